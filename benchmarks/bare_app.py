"""The floor: the same web stack as Nentang (FastAPI on uvicorn, asyncpg) with nothing else.

No ORM, no authentication, no tenant scope, no row-level security, no audit, no telemetry:
one pooled asyncpg query per request. Whatever Nentang costs on top of this is the price of
its features, so this is what its throughput is compared against.

Run it with ``uvicorn benchmarks.bare_app:app``; ``BENCH_BARE_DSN`` names the database
(a plain ``postgresql://`` DSN). The table (:data:`SCHEMA`) must exist: ``benchmarks/run.py``
creates it, so that the role the app connects as needs no right to create tables.

``POST /bare/submissions`` is the floor for creating a submission: the same body as
Nentang's ``POST /api/v1/tenants/{t}/submissions`` (``{"form": ..., "data": {...}}``), parsed
by pydantic and inserted as JSONB into :data:`SUBMISSIONS_SCHEMA`'s table (which
``benchmarks/submissions.py`` creates), echoing the data back as Nentang does.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any

import asyncpg
from fastapi import FastAPI, HTTPException, Request
from pydantic import BaseModel, Field

SCHEMA = """CREATE TABLE IF NOT EXISTS bench_bare (
    code text PRIMARY KEY,
    name text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
)"""
SUBMISSIONS_SCHEMA = """CREATE TABLE IF NOT EXISTS bench_bare_submissions (
    id uuid PRIMARY KEY,
    form text NOT NULL,
    data jsonb NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
)"""
# Nentang's default NENTANG_DB_POOL_SIZE. (Its SQLAlchemy pool may also overflow to twice
# that; at 32 connections the bare app's requests are short enough not to need it.)
POOL_SIZE = 10


class BareIn(BaseModel):
    code: str = Field(max_length=32)
    name: str = Field(max_length=255)


class BareOut(BaseModel):
    code: str
    name: str
    created_at: datetime


class BareSubmissionIn(BaseModel):
    form: str = Field(max_length=64)
    data: dict[str, Any]


class BareSubmissionOut(BaseModel):
    id: uuid.UUID
    form: str
    data: dict[str, Any]
    created_at: datetime


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    dsn = os.environ.get("BENCH_BARE_DSN", "postgresql://postgres@127.0.0.1:5432/postgres")
    pool = await asyncpg.create_pool(dsn, min_size=POOL_SIZE, max_size=POOL_SIZE)
    app.state.pool = pool
    try:
        yield
    finally:
        await pool.close()


app = FastAPI(title="bare floor", lifespan=lifespan)


def _pool(request: Request) -> Any:
    return request.app.state.pool


@app.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@app.get("/bare/{code}", response_model=BareOut)
async def read(code: str, request: Request) -> dict[str, Any]:
    row = await _pool(request).fetchrow(
        "SELECT code, name, created_at FROM bench_bare WHERE code = $1", code)
    if row is None:
        raise HTTPException(404, "not found")
    return dict(row)


@app.post("/bare", status_code=201, response_model=BareOut)
async def create(body: BareIn, request: Request) -> dict[str, Any]:
    row = await _pool(request).fetchrow(
        "INSERT INTO bench_bare (code, name) VALUES ($1, $2) RETURNING code, name, created_at",
        body.code, body.name)
    return dict(row)


@app.post("/bare/submissions", status_code=201, response_model=BareSubmissionOut)
async def create_submission(body: BareSubmissionIn, request: Request) -> dict[str, Any]:
    row = await _pool(request).fetchrow(
        "INSERT INTO bench_bare_submissions (id, form, data) VALUES ($1, $2, $3::jsonb) "
        "RETURNING id, created_at", uuid.uuid4(), body.form,
        json.dumps(body.data, ensure_ascii=False))
    return {"id": row["id"], "form": body.form, "data": body.data,
            "created_at": row["created_at"]}
