"""Generate the tenant manifest of Vietnam's administrative units after the 2025 reform.

The data (34 provinces, 3,321 communes) comes from the ``vietnam-provinces`` package. Codes are
the official statistical codes: two digits for a province, five for a commune.
"""

from __future__ import annotations

import json
from typing import Any

import vietnam_provinces


def build_manifest(root_code: str) -> dict[str, Any]:
    provinces = json.loads(vietnam_provinces.NESTED_DIVISIONS_JSON_PATH.read_text("utf-8"))
    tenants: list[dict[str, Any]] = []
    for province in sorted(provinces, key=lambda p: p["code"]):
        province_code = f"{province['code']:02d}"
        tenants.append({"code": province_code, "name": province["name"], "kind": "province",
                        "parent": root_code})
        for ward in sorted(province["wards"], key=lambda w: w["code"]):
            tenants.append({"code": f"{ward['code']:05d}", "name": ward["name"],
                            "kind": "commune", "parent": province_code})
    return {
        "$schema": "./tenant-manifest.schema.json",
        "kind": "TenantManifest",
        "description": "Vietnam's provinces and communes after the 2025 administrative reform.",
        "source": {
            "package": "vietnam-provinces",
            "version": vietnam_provinces.__version__,
            "data_version": vietnam_provinces.__data_version__,
        },
        "tenants": tenants,
    }
