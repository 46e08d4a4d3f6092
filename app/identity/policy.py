"""The one place that decides whether a caller may act.

Endpoints declare what they need with
:class:`~app.identity.dependencies.Requires`; services that act for a caller call
:func:`authorize`. Both come down to :func:`authorize`, which reads only the caller's
permissions at the tenant's path (grants cover subtrees), so the rule is the same for a token
holder and for the operator at the CLI.

Delegation follows one rule, :func:`check_delegable`: a caller may hand out (or take away) a
set of permissions at a node only if it holds every one of them there itself. That covers
built-in and custom roles alike, so nobody escalates by defining a role.
"""

from __future__ import annotations

from collections.abc import Iterable

from app.core.problems import Problem, forbidden
from app.identity.callers import Caller
from app.identity.permissions import Permission
from app.tenancy.models import Tenant


def authorize(caller: Caller, permission: Permission, tenant: Tenant, *,
              from_ancestor: bool = False) -> None:
    """Raise 403 unless ``caller`` holds ``permission`` at ``tenant``.

    ``from_ancestor`` demands it through a grant at a strict ancestor: nobody suspends or
    reactivates the node their own authority comes from."""
    held = (caller.permissions_above(tenant.path) if from_ancestor
            else caller.permissions_at(tenant.path))
    if permission in held:
        return
    where = "one of its ancestors" if from_ancestor else f"tenant '{tenant.code}'"
    raise forbidden(f"This action needs '{permission}' on {where}.")


def check_delegable(caller: Caller, tenant: Tenant, permissions: Iterable[Permission],
                    what: str) -> None:
    """Refuse to hand out, or take away, permissions the caller does not hold at ``tenant``."""
    missing = sorted(set(permissions) - caller.permissions_at(tenant.path))
    if missing:
        raise Problem(403, "escalation", "Không thể cấp quyền cao hơn quyền của mình",
                      "Privilege escalation refused",
                      detail=f"{what} needs {', '.join(missing)}, which you do not hold on "
                             f"'{tenant.code}'.", extra={"missing": missing})
