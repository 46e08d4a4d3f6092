"""``nentang subscriptions``: a unit's subscriptions from the command line, through the API.

``apply`` reads a JSON file (one subscription, or a list) and creates each by name, or
replaces the one of that name: the file is the set-up, kept under version control, and
applying it twice changes nothing more. Secrets in the file (a token gateway's secret, an
mTLS key) go to the API and never back: ``list`` shows them as ``***``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx

from app.core.api_client import ApiFailed, problem_text, signed_in


def _base(tenant: str) -> str:
    return f"/api/v1/tenants/{tenant}/subscriptions"


def _checked(response: httpx.Response, *ok: int) -> httpx.Response:
    if response.status_code not in ok:
        raise ApiFailed(problem_text(response))
    return response


def listed(http: httpx.Client, tenant: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = _checked(http.get(_base(tenant)), 200).json()
    return found


def apply(http: httpx.Client, tenant: str, path: Path) -> list[tuple[str, str]]:
    """Create or replace each subscription of the file; returns (name, what was done)."""
    try:
        loaded = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ApiFailed(f"cannot read {path}: {exc}") from None
    wanted = loaded if isinstance(loaded, list) else [loaded]
    existing = {s["name"]: s["id"] for s in listed(http, tenant)}
    done = []
    for index, body in enumerate(wanted):
        name = body.get("name") if isinstance(body, dict) else None
        if not name:
            raise ApiFailed(f"{path}: subscription {index} has no name")
        if name in existing:
            _checked(http.put(f"{_base(tenant)}/{existing[name]}", json=body), 200)
            done.append((name, "replaced"))
        else:
            _checked(http.post(_base(tenant), json=body), 201)
            done.append((name, "created"))
    return done


def delete(http: httpx.Client, tenant: str, name: str) -> None:
    existing = {s["name"]: s["id"] for s in listed(http, tenant)}
    if name not in existing:
        raise ApiFailed(f"no subscription named {name!r} at {tenant}")
    _checked(http.delete(f"{_base(tenant)}/{existing[name]}"), 204)


def session(api: str, client_id: str, secret: str) -> httpx.Client:
    return signed_in(api, client_id, secret)
