"""Liveness and readiness probes.

Readiness accepts a schema *ahead* of this release: during a rolling upgrade the migration
job applies the next release's expand step first, and the previous release's replicas must
keep serving on it. Every migration is written to be compatible with the release before it
(docs: "Upgrades without downtime"). A schema *behind* this release's head (a migration not
yet applied) is not ready: this code may read columns that do not exist yet.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from sqlalchemy import text
from starlette.responses import JSONResponse

from app.core.migrations import current_revision

router = APIRouter(tags=["health"])


@router.get("/healthz", summary="Liveness: the process is serving")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


def schema_check(current: str | None, head: str | None, known: frozenset[str]) -> str:
    """``ok`` when this release can serve on the schema at ``current``, else why not."""
    if current == head:
        return "ok"
    if current is None:
        return "not migrated (run `nentang db upgrade`)"
    if current in known:
        return f"behind: at {current}, this release needs {head} (run `nentang db upgrade`)"
    return "ok"  # a newer release's expand step: compatible with this release by policy


@router.get("/readyz", summary="Readiness: the database answers and its schema is at head "
            "(or ahead of it, during a rolling upgrade)")
async def readyz(request: Request) -> JSONResponse:
    state = request.app.state
    checks: dict[str, Any] = {}
    ready = False
    try:
        async with state.db.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
        checks["database"] = "ok"
        current = await current_revision(state.db.engine)
        checks["migrations"] = schema_check(current, state.revisions.head,
                                            state.revisions.known)
        ready = checks["migrations"] == "ok"
        if ready and current != state.revisions.head:
            checks["schema"] = f"ahead at {current} (a newer release's migration)"
    except Exception as exc:  # any failure to reach the database means not ready
        checks["database"] = f"unreachable: {type(exc).__name__}"
    return JSONResponse({"status": "ready" if ready else "not ready", "checks": checks},
                        status_code=200 if ready else 503)
