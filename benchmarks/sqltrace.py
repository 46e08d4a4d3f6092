"""Count the SQL a Nentang request sends, by running the app in-process against a database.

Throughput says how much a request costs; this says where the database part of it goes.
Each statement below is one round trip to PostgreSQL (asyncpg keeps the prepared statements,
so a warm connection sends only Bind/Execute), and each transaction adds two more, for
``BEGIN`` and ``COMMIT``. The first call of each request warms the statement cache and is
not recorded.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import httpx
from sqlalchemy import event

from app.config import Settings
from app.main import create_app


class _Recorder:
    def __init__(self) -> None:
        self.statements: list[str] = []
        self.transactions = 0

    def statement(self, _conn: Any, _cursor: Any, sql: str, *_args: Any) -> None:
        self.statements.append(" ".join(sql.split()))

    def begin(self, _conn: Any) -> None:
        self.transactions += 1


async def trace(
    settings: Settings, requests: dict[str, Callable[[httpx.AsyncClient], Awaitable[int]]],
) -> dict[str, dict[str, Any]]:
    """Run each request twice and report the statements of the second run.

    ``requests`` maps a label to a coroutine that performs the request and returns its
    HTTP status.
    """
    app = create_app(settings)
    recorder = _Recorder()
    engine = app.state.db.engine.sync_engine
    event.listen(engine, "before_cursor_execute", recorder.statement)
    event.listen(engine, "begin", recorder.begin)
    report: dict[str, dict[str, Any]] = {}
    transport = httpx.ASGITransport(app=app)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://bench") as http:
            for label, request in requests.items():
                await request(http)
                recorder.statements.clear()
                recorder.transactions = 0
                status = await request(http)
                report[label] = {
                    "status": status,
                    "statements": list(recorder.statements),
                    "transactions": recorder.transactions,
                    "round_trips": len(recorder.statements) + 2 * recorder.transactions,
                }
    finally:
        await app.state.db.dispose()
    return report


async def status(pending: Awaitable[httpx.Response]) -> int:
    """The status of a pending request, for building ``trace``'s request functions."""
    return (await pending).status_code
