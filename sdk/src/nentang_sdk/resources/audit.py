"""The audit trail: each unit's changes, who made them, before and after, in a hash chain."""

from __future__ import annotations

from nentang_sdk._core import Call, M, Resource, op, paged
from nentang_sdk.models import AuditRecord, ChainVerification


class Audit(Resource[M]):
    @paged("GET /api/v1/tenants/{tenant}/audit")
    def list(self, tenant: str, /, *, limit: int | None = None) -> Call[AuditRecord]:
        """The unit's audit records, oldest first."""
        return Call(AuditRecord, tenant, params={"limit": limit})

    @op("GET /api/v1/tenants/{tenant}/audit/verify")
    def verify(self, tenant: str, /) -> Call[ChainVerification]:
        """Recompute the unit's hash chain: ``ok``, or the first broken link and why."""
        return Call(ChainVerification, tenant)
