"""Self-service reports: counts and aggregates over a form's submissions in a unit's subtree,
defined as JSON, saved, run and exported."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from nentang_sdk._core import NO_CONTENT, Call, Download, M, Resource, body, op, paged
from nentang_sdk.models import Report, ReportResult


class Reports(Resource[M]):
    @paged("GET /api/v1/tenants/{tenant}/reports")
    def list(self, tenant: str, /, *, limit: int | None = None) -> Call[Report]:
        """The reports saved at this unit, by key (without their definitions; units below do
        not inherit them)."""
        return Call(Report, tenant, params={"limit": limit})

    @op("GET /api/v1/tenants/{tenant}/reports/{key}")
    def get(self, tenant: str, key: str, /) -> Call[Report]:
        return Call(Report, tenant, key)

    @op("POST /api/v1/tenants/{tenant}/reports")
    def create(self, tenant: str, /, *, definition: Mapping[str, Any]) -> Call[Report]:
        """Save a report definition (``key``, ``title``, ``form``, ``filters``, ``group_by``,
        ``aggregates``...); ConflictError if the key is taken here."""
        return Call(Report, tenant, json=dict(definition))

    @op("POST /api/v1/tenants/{tenant}/reports/run")
    def preview(self, tenant: str, /, *, definition: Mapping[str, Any]) -> Call[ReportResult]:
        """Run a definition without saving it (checks it too: a ValidationError points at
        each bad part)."""
        return Call(ReportResult, tenant, json=dict(definition))

    @op("PUT /api/v1/tenants/{tenant}/reports/{key}")
    def replace(self, tenant: str, key: str, /, *,
                definition: Mapping[str, Any]) -> Call[Report]:
        """Replace a saved report's definition (its key stays)."""
        return Call(Report, tenant, key, json=dict(definition))

    @op("DELETE /api/v1/tenants/{tenant}/reports/{key}")
    def delete(self, tenant: str, key: str, /) -> Call[None]:
        return Call(NO_CONTENT, tenant, key)

    @op("POST /api/v1/tenants/{tenant}/reports/{key}/run")
    def run(self, tenant: str, key: str, /, *,
            rollup: str | None = None) -> Call[ReportResult]:
        """Run a saved report over this unit and every unit below it; ``rollup`` ("none",
        "children") overrides the definition's."""
        return Call(ReportResult, tenant, key, json=body(rollup=rollup) or None)

    @op("GET /api/v1/tenants/{tenant}/reports/{key}/export")
    def export(self, tenant: str, key: str, /, *, format: str | None = None) -> Call[Download]:
        """Run a saved report and get the result as a CSV (default) or ``format="xlsx"`` file
        (the export is recorded in the audit trail)."""
        return Call(Download, tenant, key, params={"format": format})
