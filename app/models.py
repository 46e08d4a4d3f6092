"""Imports every model so that ``Base.metadata`` knows all tables (for Alembic and tests)."""

from app.audit.models import AuditRecord
from app.core.idempotency import IdempotencyRecord
from app.identity.models import ApiClient, Principal, RoleGrant
from app.tenancy.models import Tenant

__all__ = ["ApiClient", "AuditRecord", "IdempotencyRecord", "Principal", "RoleGrant", "Tenant"]
