"""Permissions and the built-in roles.

Roles are named sets of permissions. A grant gives a role at a tenant node and covers the
node's whole subtree. Custom roles defined as data arrive with the identity issue; this
module is the registry they will extend.
"""

from __future__ import annotations

from enum import StrEnum


class Permission(StrEnum):
    PLATFORM_ADMIN = "platform:admin"
    TENANTS_READ = "tenants:read"
    TENANTS_WRITE = "tenants:write"
    CLIENTS_READ = "clients:read"
    CLIENTS_WRITE = "clients:write"
    AUDIT_READ = "audit:read"
    FORMS_READ = "forms:read"
    FORMS_WRITE = "forms:write"
    WORKFLOWS_READ = "workflows:read"
    WORKFLOWS_WRITE = "workflows:write"
    SUBMISSIONS_CREATE = "submissions:create"
    CASES_READ = "cases:read"
    CASES_ACT = "cases:act"


_ALL = frozenset(Permission)
P = Permission

BUILTIN_ROLES: dict[str, frozenset[Permission]] = {
    "platform_admin": _ALL,
    "tenant_admin": _ALL - {P.PLATFORM_ADMIN},
    "form_designer": frozenset({P.TENANTS_READ, P.FORMS_READ, P.FORMS_WRITE}),
    "workflow_designer": frozenset(
        {P.TENANTS_READ, P.FORMS_READ, P.WORKFLOWS_READ, P.WORKFLOWS_WRITE}
    ),
    "officer": frozenset({P.TENANTS_READ, P.FORMS_READ, P.CASES_READ, P.CASES_ACT}),
    "reviewer": frozenset({P.TENANTS_READ, P.FORMS_READ, P.CASES_READ, P.CASES_ACT}),
    "auditor": frozenset({P.TENANTS_READ, P.CLIENTS_READ, P.AUDIT_READ}),
    "api_client": frozenset({P.TENANTS_READ, P.FORMS_READ, P.SUBMISSIONS_CREATE, P.CASES_READ}),
}


def role_permissions(role: str) -> frozenset[Permission]:
    return BUILTIN_ROLES.get(role, frozenset())


def is_known_role(role: str) -> bool:
    return role in BUILTIN_ROLES
