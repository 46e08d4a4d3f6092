"""``nentang apply``: load a declarative tenant manifest, idempotently and all-or-nothing.

The manifest is checked in full first (JSON Schema, then codes, parents and kinds) and every
problem is reported with its JSON Pointer; nothing is written unless all of it is valid. Then
missing tenants are created (parents first) and changed names updated, in one transaction.
Tenants are never deleted or moved by a manifest.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator
from sqlalchemy.ext.asyncio import AsyncSession

from app.identity.callers import Operator
from app.tenancy import repository, service
from app.tenancy.models import ALLOWED_CHILD_KINDS, Tenant, TenantKind
from app.tenancy.schemas import TenantCreate, TenantUpdate

SCHEMA_FILE = "tenant-manifest.schema.json"


class ManifestError(Exception):
    def __init__(self, source: str, errors: list[tuple[str, str]]) -> None:
        self.source = source
        self.errors = errors
        lines = "\n".join(f"  {pointer or '/'}: {message}" for pointer, message in errors)
        super().__init__(f"{source}: {len(errors)} problem(s)\n{lines}")


@dataclass
class ApplyReport:
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)


def _schema() -> dict[str, Any]:
    path = Path(__file__).resolve().parents[2] / "tenants" / SCHEMA_FILE
    if path.exists():
        loaded: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        return loaded
    text = resources.files("app").joinpath(SCHEMA_FILE).read_text(encoding="utf-8")
    packaged: dict[str, Any] = json.loads(text)
    return packaged


def manifest_files(paths: list[Path]) -> list[Path]:
    """Expand directories to the manifests in them (``*.json`` except JSON Schemas)."""
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            found.extend(p for p in sorted(path.glob("*.json"))
                         if not p.name.endswith(".schema.json"))
        else:
            found.append(path)
    return found


def load(path: Path) -> list[dict[str, Any]]:
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ManifestError(str(path), [("", f"cannot read JSON: {exc}")]) from exc
    validator = Draft202012Validator(_schema())
    errors = sorted(validator.iter_errors(doc), key=lambda e: list(e.absolute_path))
    if errors:
        raise ManifestError(str(path), [
            ("/" + "/".join(str(p) for p in e.absolute_path), e.message) for e in errors[:50]
        ])
    entries: list[dict[str, Any]] = doc["tenants"]
    return entries


def _check(source: str, entries: list[dict[str, Any]], existing: dict[str, Tenant],
           root: Tenant | None) -> list[dict[str, Any]]:
    """Validate codes, parents and kinds; return the entries ordered parents-first."""
    errors: list[tuple[str, str]] = []
    by_code: dict[str, int] = {}
    for index, entry in enumerate(entries):
        if entry["code"] in by_code:
            first = by_code[entry["code"]]
            errors.append((f"/tenants/{index}/code", f"duplicate of /tenants/{first}"))
        by_code.setdefault(entry["code"], index)
    kinds = {code: TenantKind(t.kind) for code, t in existing.items()}
    kinds.update({e["code"]: TenantKind(e["kind"]) for e in entries})
    for index, entry in enumerate(entries):
        pointer, code, parent = f"/tenants/{index}", entry["code"], entry.get("parent")
        current = existing.get(code)
        if parent is None:
            if root is None:
                errors.append((pointer, "no platform root yet: run `nentang bootstrap` first"))
            elif code != root.code:
                errors.append((pointer + "/parent", f"only the root ({root.code}) has no parent"))
            continue
        if parent not in kinds:
            errors.append((pointer + "/parent", f"unknown parent '{parent}'"))
            continue
        parent_row = existing.get(parent)
        if current is not None and (parent_row is None or current.parent_id != parent_row.id):
            errors.append((pointer + "/parent", f"'{code}' exists under another parent; "
                           "apply never moves tenants"))
        if current is not None and current.kind != entry["kind"]:
            errors.append((pointer + "/kind", f"'{code}' exists as a {current.kind}"))
        if TenantKind(entry["kind"]) not in ALLOWED_CHILD_KINDS[kinds[parent]]:
            errors.append((pointer + "/kind", f"a {kinds[parent]} cannot hold a {entry['kind']}"))
    if errors:
        raise ManifestError(source, errors)
    ordered: list[dict[str, Any]] = []
    placed = set(existing)
    pending = list(range(len(entries)))
    while pending:
        ready = [i for i in pending
                 if entries[i].get("parent") is None or entries[i]["parent"] in placed]
        if not ready:
            raise ManifestError(source, [("/tenants", "the parent links form a cycle")])
        ordered.extend(entries[i] for i in ready)
        placed.update(entries[i]["code"] for i in ready)
        done = set(ready)
        pending = [i for i in pending if i not in done]
    return ordered


async def apply(
    session: AsyncSession, entries: list[dict[str, Any]], *, source: str,
    operator: Operator, progress: Callable[[int, int], None] | None = None,
) -> ApplyReport:
    """Apply ``entries`` in the caller's transaction (which must have the platform scope)."""
    codes = {e["code"] for e in entries} | {e["parent"] for e in entries if e.get("parent")}
    existing = await repository.by_codes(session, sorted(codes))
    root = await repository.get_root(session)
    ordered = _check(source, entries, existing, root)
    report = ApplyReport()
    for done, entry in enumerate(ordered, start=1):
        current = existing.get(entry["code"])
        if current is None:
            parent = existing[entry["parent"]]
            tenant = await service.create_child(
                session, caller=operator, parent=parent,
                data=TenantCreate.model_validate(entry),
            )
            existing[tenant.code] = tenant
            report.created.append(tenant.code)
        elif current.name != entry["name"]:
            await service.update(session, caller=operator, tenant=current,
                                 data=TenantUpdate(name=entry["name"]), expected_version=None)
            report.updated.append(current.code)
        else:
            report.unchanged.append(current.code)
        if progress is not None:
            progress(done, len(ordered))
    return report
