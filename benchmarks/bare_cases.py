"""The bare floor app (:mod:`benchmarks.bare_app`) plus a bare case transition.

``POST /bare/cases/{id}/actions/{action}`` is the least a state transition with an ETag can
do on the same stack (FastAPI on uvicorn, pooled asyncpg, pydantic in and out): in one
transaction, an ``UPDATE ... WHERE id = $1 AND revision = $2 AND state = $3 RETURNING`` (the
ETag check and the move in one statement; 412 if no row matched) and an ``INSERT`` of a
history row; the case and its JSONB data echoed back. No authentication, no tenant scope,
no row-level security, no workflow engine, no tasks, timers or outbox.

Run it with ``uvicorn benchmarks.bare_cases:app``; ``BENCH_BARE_DSN`` names the database.
:data:`CASES_SCHEMA` must exist (``benchmarks/cases.py`` creates it and grants the service
role what it needs). The routes of :mod:`benchmarks.bare_app` are served too.
"""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from typing import Annotated, Any

from fastapi import FastAPI, Header, HTTPException, Request
from fastapi.routing import APIRoute
from pydantic import BaseModel, Field

from benchmarks import bare_app

CASES_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS bench_bare_cases (
    id uuid PRIMARY KEY,
    state text NOT NULL,
    revision integer NOT NULL,
    data jsonb NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
)""",
    """CREATE TABLE IF NOT EXISTS bench_bare_case_history (
    case_id uuid NOT NULL REFERENCES bench_bare_cases (id),
    seq integer NOT NULL,
    action text NOT NULL,
    from_state text NOT NULL,
    to_state text NOT NULL,
    comment text,
    at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (case_id, seq)
)""",
)
CASES_GRANTS = ("GRANT SELECT, INSERT, UPDATE ON bench_bare_cases TO \"{role}\"",
                "GRANT SELECT, INSERT ON bench_bare_case_history TO \"{role}\"")
# The one move the benchmark takes: action -> (from, to).
MOVES = {"tiep_nhan_ho_so": ("tiep_nhan", "xem_xet_ho_so")}


class BareActionIn(BaseModel):
    fields: dict[str, Any] = Field(default_factory=dict)
    comment: str | None = Field(default=None, max_length=5000)


class BareCaseOut(BaseModel):
    id: uuid.UUID
    state: str
    revision: int
    etag: str
    data: dict[str, Any]
    updated_at: datetime


app = FastAPI(title="bare floor with cases", lifespan=bare_app.lifespan)
for route in bare_app.app.routes:
    if isinstance(route, APIRoute) and (route.path.startswith("/bare")
                                        or route.path == "/healthz"):
        app.router.routes.append(route)


@app.post("/bare/cases/{case_id}/actions/{action}", response_model=BareCaseOut)
async def act(case_id: uuid.UUID, action: str, body: BareActionIn, request: Request,
              if_match: Annotated[str | None, Header()] = None) -> dict[str, Any]:
    if action not in MOVES:
        raise HTTPException(404, "no such action")
    if if_match is None:
        raise HTTPException(428, "If-Match required")
    tag_id, _, tag_revision = if_match.strip().strip('"').partition(".")
    if tag_id != str(case_id) or not tag_revision.isdigit():
        raise HTTPException(412, "stale")
    source, target = MOVES[action]
    async with request.app.state.pool.acquire() as conn, conn.transaction():
        row = await conn.fetchrow(
            "UPDATE bench_bare_cases SET state = $4, revision = revision + 1, "
            "data = data || $5::jsonb, updated_at = now() "
            "WHERE id = $1 AND revision = $2 AND state = $3 "
            "RETURNING id, state, revision, data, updated_at",
            case_id, int(tag_revision), source, target,
            json.dumps(body.fields, ensure_ascii=False))
        if row is None:
            raise HTTPException(412, "stale")
        await conn.execute(
            "INSERT INTO bench_bare_case_history (case_id, seq, action, from_state, to_state, "
            "comment) VALUES ($1, $2, $3, $4, $5, $6)",
            case_id, row["revision"], action, source, target, body.comment)
    return {"id": row["id"], "state": row["state"], "revision": row["revision"],
            "etag": f'"{row["id"]}.{row["revision"]}"', "data": json.loads(row["data"]),
            "updated_at": row["updated_at"]}
