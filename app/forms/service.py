"""The form lifecycle (:mod:`app.definitions.lifecycle`) bound to the form tables, plus what
only forms have: the variant rules over JSON Schema (:mod:`app.forms.variants`) and the diff
by field.
"""

from __future__ import annotations

from typing import Any

import jsonpatch
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.problems import Problem
from app.definitions.lifecycle import (
    Lifecycle,
    Parent,
    Words,
    field_problem,
    tenant_codes,
    variant_problem,
)
from app.forms import definitions
from app.forms.models import Form, FormVersion
from app.forms.variants import check_variant
from app.identity.callers import Caller
from app.tenancy.models import Tenant

FORMS: Lifecycle[Form, FormVersion] = Lifecycle(
    head=Form, version=FormVersion, head_column=FormVersion.form_id,
    words=Words(kind="form", en="form", vi="biểu mẫu"), check=definitions.check)

checked = FORMS.checked
lineage_forms = FORMS.lineage
resolve = FORMS.resolve
own = FORMS.own
versions = FORMS.versions
version = FORMS.version
draft_of = FORMS.draft_of
current = FORMS.current
version_to_check = FORMS.version_to_check
usable_version = FORMS.usable_version
usable_at = FORMS.usable_at
create = FORMS.create
new_draft = FORMS.new_draft
update_draft = FORMS.update_draft
discard_draft = FORMS.discard_draft
deprecate = FORMS.deprecate

__all__ = ["field_problem", "tenant_codes"]


async def _narrows_parent(session: AsyncSession, tenant: Tenant, document: dict[str, Any],
                          parent: Parent[Any, Any] | None) -> None:
    if parent is None:
        return
    violations = check_variant(parent.version.definition, document)
    if violations:
        raise variant_problem("biểu mẫu", "form", document["key"], parent,
                              "A variant may add fields, narrow options and change labels, but "
                              "may not remove or loosen what the parent requires.", violations)


async def publish(session: AsyncSession, *, caller: Caller, tenant: Tenant, key: str,
                  number: int) -> tuple[FormVersion, int]:
    """Publish a draft. Returns the version and how many variants below were flagged."""
    return await FORMS.publish(session, caller=caller, tenant=tenant, key=key, number=number,
                               check=_narrows_parent)


def _fields(definition: dict[str, Any]) -> dict[str, Any]:
    properties = definition["schema"].get("properties", {})
    return properties if isinstance(properties, dict) else {}


def diff(a: FormVersion, b: FormVersion) -> dict[str, Any]:
    """What changed from ``a`` to ``b``: an RFC 6902 JSON Patch, and a summary by field."""
    before, after = _fields(a.definition), _fields(b.definition)
    required_a = set(a.definition["schema"].get("required", []))
    required_b = set(b.definition["schema"].get("required", []))
    ui_a = a.definition["ui_schema"]["fields"]
    ui_b = b.definition["ui_schema"]["fields"]
    return {
        "from": a.number,
        "to": b.number,
        "same": a.digest == b.digest,
        "fields": {
            "added": sorted(set(after) - set(before)),
            "removed": sorted(set(before) - set(after)),
            "changed": sorted(n for n in set(before) & set(after)
                              if before[n] != after[n] or ui_a.get(n) != ui_b.get(n)),
            "now_required": sorted(required_b - required_a),
            "no_longer_required": sorted(required_a - required_b),
        },
        "patch": jsonpatch.make_patch(a.definition, b.definition).patch,
    }


def unsaved_definition(definition: dict[str, Any], *, version: int | None) -> dict[str, Any]:
    """A definition the form builder has not saved, checked as a draft would be, for the live
    preview; its problems point under ``/definition`` in the request body."""
    if version is not None:
        raise Problem(422, "validation-failed", "Dữ liệu không hợp lệ", "Invalid request",
                      detail="Give either version or definition, not both.",
                      errors=[{"pointer": "/version", "detail": "Not with definition."}])
    try:
        return definitions.check(definition)
    except definitions.DefinitionError as exc:
        raise field_problem(422, "invalid-form", "Định nghĩa biểu mẫu không hợp lệ",
                            "Invalid form definition", "The definition has problems; see "
                            "errors.", [definitions.FieldError("/definition" + e.pointer, e.vi,
                                                               e.en, e.keyword)
                                        for e in exc.errors]) from None
