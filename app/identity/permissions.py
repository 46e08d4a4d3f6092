"""Permissions and the built-in roles.

A role is a named set of permissions. The built-in roles below exist on every tenant; a
tenant admin defines custom roles as data (:mod:`app.identity.roles`), usable at the tenant
that defines them and everywhere below it. A grant gives a role at a tenant node and covers
the node's whole subtree.
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum


class Permission(StrEnum):
    PLATFORM_ADMIN = "platform:admin"
    TENANTS_READ = "tenants:read"
    TENANTS_WRITE = "tenants:write"
    USERS_READ = "users:read"
    USERS_WRITE = "users:write"
    CLIENTS_READ = "clients:read"
    CLIENTS_WRITE = "clients:write"
    ROLES_READ = "roles:read"
    ROLES_WRITE = "roles:write"
    GRANTS_READ = "grants:read"
    GRANTS_WRITE = "grants:write"
    IDP_READ = "idp:read"
    IDP_WRITE = "idp:write"
    AUDIT_READ = "audit:read"
    FORMS_READ = "forms:read"
    FORMS_WRITE = "forms:write"
    WORKFLOWS_READ = "workflows:read"
    WORKFLOWS_WRITE = "workflows:write"
    SUBMISSIONS_CREATE = "submissions:create"
    SUBMISSIONS_READ = "submissions:read"
    # Fields a form marks as personal data (Decree 13/2023) are masked without these.
    PERSONAL_DATA_BASIC = "personal_data:basic"
    PERSONAL_DATA_SENSITIVE = "personal_data:sensitive"
    CASES_READ = "cases:read"
    CASES_ACT = "cases:act"
    REPORTS_READ = "reports:read"
    REPORTS_WRITE = "reports:write"


_ALL = frozenset(Permission)
P = Permission

BUILTIN_ROLES: dict[str, frozenset[Permission]] = {
    "platform_admin": _ALL,
    "tenant_admin": _ALL - {P.PLATFORM_ADMIN},
    "form_designer": frozenset({P.TENANTS_READ, P.FORMS_READ, P.FORMS_WRITE, P.REPORTS_READ,
                                P.REPORTS_WRITE}),
    "workflow_designer": frozenset(
        {P.TENANTS_READ, P.FORMS_READ, P.WORKFLOWS_READ, P.WORKFLOWS_WRITE}
    ),
    "officer": frozenset({P.TENANTS_READ, P.FORMS_READ, P.SUBMISSIONS_READ,
                          P.PERSONAL_DATA_BASIC, P.CASES_READ, P.CASES_ACT, P.REPORTS_READ}),
    "reviewer": frozenset({P.TENANTS_READ, P.FORMS_READ, P.SUBMISSIONS_READ,
                           P.PERSONAL_DATA_BASIC, P.PERSONAL_DATA_SENSITIVE, P.CASES_READ,
                           P.CASES_ACT, P.REPORTS_READ}),
    "auditor": frozenset({P.TENANTS_READ, P.USERS_READ, P.CLIENTS_READ, P.ROLES_READ,
                          P.GRANTS_READ, P.IDP_READ, P.AUDIT_READ}),
    "api_client": frozenset({P.TENANTS_READ, P.FORMS_READ, P.SUBMISSIONS_CREATE,
                             P.SUBMISSIONS_READ, P.CASES_READ}),
}

ROLE_DESCRIPTIONS: dict[str, str] = {
    "platform_admin": "Everything, on the whole platform.",
    "tenant_admin": "Administers a unit and everything below it.",
    "form_designer": "Designs and publishes eForms and the reports over them.",
    "workflow_designer": "Designs and publishes workflows.",
    "officer": "Handles cases; sees basic personal data.",
    "reviewer": "Reviews and approves cases; sees all personal data.",
    "auditor": "Reads the audit trail and the access set-up.",
    "api_client": "A local system submitting and reading cases (personal data masked).",
}


def builtin_permissions(role: str) -> frozenset[Permission] | None:
    return BUILTIN_ROLES.get(role)


KNOWN_PERMISSIONS = frozenset(p.value for p in Permission)


def known_permissions(names: Iterable[str] | None) -> frozenset[Permission]:
    """The permissions named in a stored list, ignoring names a later release dropped."""
    return frozenset(Permission(n) for n in names or () if n in KNOWN_PERMISSIONS)
