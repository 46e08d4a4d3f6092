from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from app.identity.callers import Operator
from app.tenancy import manifest, repository
from app.tenancy.models import Tenant
from app.tenancy.scope import TenantScope, apply_scope
from tests.platform import ROOT_CODE, Platform, new_code

REPO = Path(__file__).resolve().parents[1]
OPERATOR = Operator("tests")


async def _apply(app: Any, entries: list[dict[str, Any]]) -> manifest.ApplyReport:
    async with app.state.db.sessionmaker() as session, session.begin():
        await apply_scope(session, TenantScope.platform("tests"))
        return await manifest.apply(session, entries, source="test", operator=OPERATOR)


async def _codes_exist(app: Any, codes: list[str]) -> set[str]:
    async with app.state.db.sessionmaker() as session, session.begin():
        await apply_scope(session, TenantScope.platform("tests"))
        return set(await repository.by_codes(session, codes))


def _write(tmp_path: Path, doc: dict[str, Any]) -> Path:
    path = tmp_path / "m.json"
    path.write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")
    return path


async def test_apply_is_idempotent_and_renames(app: Any, platform: Platform,
                                               client: httpx.AsyncClient) -> None:
    province, commune = new_code("P"), new_code("X")
    entries = [
        {"code": commune, "name": "Xã Một", "kind": "commune", "parent": province},
        {"code": province, "name": "Tỉnh Một", "kind": "province", "parent": ROOT_CODE},
    ]
    first = await _apply(app, entries)
    assert first.created == [province, commune]
    again = await _apply(app, entries)
    assert again.created == [] and sorted(again.unchanged) == sorted([province, commune])
    entries[0]["name"] = "Xã Một Mới"
    renamed = await _apply(app, entries)
    assert renamed.updated == [commune]
    trail = await client.get(f"/api/v1/tenants/{commune}/audit", headers=platform.admin.headers)
    assert [r["action"] for r in trail.json()["items"]] == ["tenant.create", "tenant.update"]
    assert trail.json()["items"][0]["actor"] == "operator:tests"


@pytest.mark.parametrize(("entry", "pointer"), [
    ({"code": "lower", "name": "x", "kind": "commune", "parent": ROOT_CODE}, "/tenants/0/code"),
    ({"code": "OK1", "name": "x", "kind": "village", "parent": ROOT_CODE}, "/tenants/0/kind"),
    ({"code": "OK2", "kind": "commune", "parent": ROOT_CODE}, "/tenants/0"),
])
def test_schema_errors_name_the_field(tmp_path: Path, entry: dict[str, Any],
                                      pointer: str) -> None:
    path = _write(tmp_path, {"kind": "TenantManifest", "tenants": [entry]})
    with pytest.raises(manifest.ManifestError) as caught:
        manifest.load(path)
    assert [p for p, _ in caught.value.errors] == [pointer]


async def test_semantic_errors_write_nothing(app: Any, platform: Platform) -> None:
    good, orphan, dup = new_code("P"), new_code("X"), new_code("X")
    entries = [
        {"code": good, "name": "Tỉnh", "kind": "province", "parent": ROOT_CODE},
        {"code": orphan, "name": "Xã", "kind": "commune", "parent": "NOPE"},
        {"code": dup, "name": "Xã", "kind": "commune", "parent": good},
        {"code": dup, "name": "Xã", "kind": "commune", "parent": good},
        {"code": new_code("X"), "name": "Xã", "kind": "commune", "parent": ROOT_CODE},
    ]
    with pytest.raises(manifest.ManifestError) as caught:
        await _apply(app, entries)
    pointers = [p for p, _ in caught.value.errors]
    assert pointers == ["/tenants/3/code", "/tenants/1/parent", "/tenants/4/kind"]
    assert await _codes_exist(app, [good, dup]) == set()


async def test_apply_never_moves_a_tenant(app: Any, platform: Platform) -> None:
    a, admin = await platform.province_with_admin()
    b, _ = await platform.province_with_admin()
    commune = await platform.tenant(a, "commune", by=admin)
    with pytest.raises(manifest.ManifestError, match="never moves"):
        await _apply(app, [{"code": commune, "name": "x", "kind": "commune", "parent": b}])


async def test_full_vietnam_tree(app: Any, platform: Platform, client: httpx.AsyncClient) -> None:
    """The shipped manifest: 34 provinces and 3,321 communes under the root, applied twice."""
    entries = manifest.load(REPO / "tenants" / "vietnam.json")
    assert len(entries) == 34 + 3321
    first = await _apply(app, entries)
    assert len(first.created) == 3355
    second = await _apply(app, entries)
    assert second.created == [] and len(second.unchanged) == 3355

    hanoi_communes = sum(1 for e in entries if e["parent"] == "01")
    page = await client.get("/api/v1/tenants/01/children",
                            params={"recursive": "true", "limit": 500},
                            headers=platform.admin.headers)
    assert len(page.json()["items"]) == hanoi_communes and page.json()["next_cursor"] is None

    async with app.state.db.sessionmaker() as session, session.begin():
        await apply_scope(session, TenantScope.platform("tests"))
        ward = await repository.get_by_code(session, "00070")
        assert ward is not None and ward.name == "Phường Hoàn Kiếm"
        assert [t.code for t in await repository.ancestors(session, ward)] == [ROOT_CODE, "01"]
        codes = [e["code"] for e in entries]
        provinces = await session.scalar(select(func.count()).select_from(Tenant).where(
            Tenant.kind == "province", Tenant.code.in_(codes)))
        assert provinces == 34
