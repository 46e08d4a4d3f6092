"""Workflows (versioned process definitions: states and the actions between them), moving
running cases between their versions, and the units' working calendars that SLAs count in."""

from __future__ import annotations

import builtins
from collections.abc import Mapping, Sequence
from datetime import date
from typing import Any

from nentang_sdk._core import NO_CONTENT, Call, Download, M, Resource, body, op, paged
from nentang_sdk.models import (
    Calendar,
    MigrationResult,
    PublishResult,
    SimulationResult,
    Version,
    Workflow,
    WorkflowDiff,
)


def _dated(days: Mapping[date, str] | None) -> builtins.list[dict[str, str]] | None:
    if days is None:
        return None
    return [{"date": day.isoformat(), "name": name} for day, name in sorted(days.items())]


class Calendars(Resource[M]):
    @op("GET /api/v1/tenants/{tenant}/calendar")
    def get(self, tenant: str, /, *, year: int | None = None) -> Call[Calendar]:
        """The unit's own calendar declaration and the calendar in effect there (its own
        merged with the units' above, the nearest deciding each date); ``year`` keeps only
        that year's dates in the effective lists."""
        return Call(Calendar, tenant, params={"year": year})

    @op("PUT /api/v1/tenants/{tenant}/calendar")
    def replace(self, tenant: str, /, *, weekend: Sequence[int] | None = None,
                holidays: Mapping[date, str] | None = None,
                working_days: Mapping[date, str] | None = None) -> Call[Calendar]:
        """Replace the unit's own declaration; whatever it leaves out is inherited. ``weekend``
        holds ISO weekdays (6 Saturday, 7 Sunday); ``holidays`` and ``working_days`` map dates
        to names (a working day on an inherited holiday cancels it). Units below inherit it."""
        return Call(Calendar, tenant, json=body(
            weekend=builtins.list(weekend) if weekend is not None else None,
            holidays=_dated(holidays), working_days=_dated(working_days)))

    @op("DELETE /api/v1/tenants/{tenant}/calendar")
    def delete(self, tenant: str, /) -> Call[None]:
        """Drop the unit's own declaration: it inherits everything again."""
        return Call(NO_CONTENT, tenant)


class Workflows(Resource[M]):
    @paged("GET /api/v1/tenants/{tenant}/workflows")
    def list(self, tenant: str, /, *, limit: int | None = None) -> Call[Workflow]:
        """Workflows usable here: the unit's own and, per key, the nearest ancestor's (without
        their definitions)."""
        return Call(Workflow, tenant, params={"limit": limit})

    @op("GET /api/v1/tenants/{tenant}/workflows/{key}")
    def get(self, tenant: str, key: str, /) -> Call[Workflow]:
        """The workflow as seen from ``tenant``, with its current definition (or its draft's,
        before the first publication)."""
        return Call(Workflow, tenant, key)

    @op("POST /api/v1/tenants/{tenant}/workflows")
    def create(self, tenant: str, /, *, definition: Mapping[str, Any]) -> Call[Workflow]:
        """Create a workflow from its definition (``kind``, ``key``, ``title``, ``form``,
        ``states``, ``actions``...); version 1 is a draft, which may be unfinished until
        :meth:`publish` checks it in full."""
        return Call(Workflow, tenant, json=dict(definition))

    @op("GET /api/v1/tenants/{tenant}/workflows/{key}/versions")
    def versions(self, tenant: str, key: str, /) -> Call[builtins.list[Version]]:
        """The workflow's versions, newest first (without their definitions)."""
        return Call(builtins.list[Version], tenant, key)

    @op("POST /api/v1/tenants/{tenant}/workflows/{key}/versions")
    def create_version(self, tenant: str, key: str, /, *,
                       definition: Mapping[str, Any] | None = None) -> Call[Version]:
        """Start the next version as a draft: ``definition``, or a copy of the current one."""
        return Call(Version, tenant, key,
                    json=dict(definition) if definition is not None else None)

    @op("GET /api/v1/tenants/{tenant}/workflows/{key}/versions/{number}")
    def version(self, tenant: str, key: str, number: int, /) -> Call[Version]:
        return Call(Version, tenant, key, number)

    @op("PUT /api/v1/tenants/{tenant}/workflows/{key}/versions/{number}")
    def update_version(self, tenant: str, key: str, number: int, /, *,
                       definition: Mapping[str, Any]) -> Call[Version]:
        """Replace a draft's definition (a published version is immutable: ConflictError)."""
        return Call(Version, tenant, key, number, json=dict(definition))

    @op("DELETE /api/v1/tenants/{tenant}/workflows/{key}/versions/{number}")
    def discard_version(self, tenant: str, key: str, number: int, /) -> Call[None]:
        """Discard a draft (a workflow never published goes with it)."""
        return Call(NO_CONTENT, tenant, key, number)

    @op("POST /api/v1/tenants/{tenant}/workflows/{key}/versions/{number}/publish")
    def publish(self, tenant: str, key: str, number: int, /) -> Call[PublishResult]:
        """Publish a draft after checking it against the unit's roles and forms (a
        ValidationError points at every state and action at fault). New cases use it."""
        return Call(PublishResult, tenant, key, number)

    @op("POST /api/v1/tenants/{tenant}/workflows/{key}/versions/{number}/deprecate")
    def deprecate(self, tenant: str, key: str, number: int, /) -> Call[Version]:
        """Take a published version out of use (running cases keep it)."""
        return Call(Version, tenant, key, number)

    @op("GET /api/v1/tenants/{tenant}/workflows/{key}/versions/{a}/diff/{b}")
    def diff(self, tenant: str, key: str, a: int, b: int, /) -> Call[WorkflowDiff]:
        """What changed from version ``a`` to version ``b``: a JSON Patch and the states and
        actions added, removed and changed."""
        return Call(WorkflowDiff, tenant, key, a, b)

    @op("POST /api/v1/tenants/{tenant}/workflows/{key}/simulate")
    def simulate(self, tenant: str, key: str, /, *, data: Mapping[str, Any],
                 steps: Sequence[Mapping[str, Any]],
                 version: int | None = None) -> Call[SimulationResult]:
        """Run a version (default: the draft, else the current one) from a case opened with
        ``data`` through ``steps`` (each ``{"action", "actor": {"id", "roles", "at"},
        "fields", "comment", "signed", "seat"}``); nothing is stored. The answer has the path
        taken, the step refused if any, and what would stop the version being published."""
        return Call(SimulationResult, tenant, key, json=body(
            data=dict(data), steps=[dict(s) for s in steps], version=version))

    @op("POST /api/v1/tenants/{tenant}/workflows/diagram")
    def diagram(self, tenant: str, /, *, definition: Mapping[str, Any],
                language: str | None = None) -> Call[Download]:
        """Draw a definition, even an unfinished draft, as an SVG diagram (``content`` is the
        SVG, ``content_type`` ``image/svg+xml``); texts in ``language`` ("vi" or "en", default
        the client's). A state an action names but the definition lacks is drawn dashed.
        Nothing is stored."""
        return Call(Download, tenant, json=dict(definition),
                    headers={"Accept-Language": language} if language else None)

    @op("POST /api/v1/tenants/{tenant}/workflows/{key}/migrate")
    def migrate_cases(self, tenant: str, key: str, /, *, to_version: int,
                      from_version: int | None = None,
                      states: Mapping[str, str] | None = None, dry_run: bool = True,
                      limit: int | None = None) -> Call[MigrationResult]:
        """Move running cases to the published ``to_version`` (only those on ``from_version``
        if given), renaming states by ``states`` (old → new). A dry run (the default) lists
        what would move and what cannot, and changes nothing. ``limit`` caps the cases handled
        per call, oldest first; call again while ``remaining`` is not 0."""
        return Call(MigrationResult, tenant, key, json=body(
            to_version=to_version, from_version=from_version,
            states=dict(states) if states is not None else None, dry_run=dry_run,
            limit=limit))
