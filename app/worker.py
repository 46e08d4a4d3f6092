"""``nentang worker``'s loop: fire due SLA timers, send due deliveries, ask remote signing
services about pending signatures, wait, again.

Every step is safe with any number of workers running (each claims its own rows), so the
loop itself keeps no state beyond the HTTP client it reuses between rounds.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass

import httpx

from app.cases import timers
from app.core.db import Database
from app.deliveries import worker as deliveries
from app.signing import steps as signing

log = logging.getLogger("nentang.worker")


@dataclass
class Round:
    fired: timers.Fired
    sent: deliveries.Sent
    signatures: dict[str, int]


async def run_round(db: Database, owner: str, *, options: deliveries.Options, batch: int,
                    client: httpx.AsyncClient | None = None) -> Round:
    fired = await timers.run_once(db, owner, batch=batch)
    sent = await deliveries.run_once(db, owner, options=options, client=client, batch=batch)
    return Round(fired, sent, await signing.poll(db))


async def run_forever(db: Database, owner: str, *, options: deliveries.Options,
                      poll_seconds: float, batch: int, stop: asyncio.Event) -> None:
    async with deliveries.new_client(options) as client:
        while not stop.is_set():
            try:
                done = await run_round(db, owner, options=options, batch=batch, client=client)
            except Exception:  # a bad row or a lost connection must not stop every tenant's work
                log.exception("worker round failed; retrying after the poll interval")
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=poll_seconds)
                continue
            if done.fired.claimed:
                log.info("fired %d timers (%d skipped, %d errors)", done.fired.fired,
                         done.fired.skipped, len(done.fired.errors))
            if any(s != "pending" for s in done.signatures):
                log.info("settled signatures: %s", done.signatures)
            if done.sent.claimed:
                log.info("sent %d deliveries (%d to retry, %d dead)", done.sent.delivered,
                         done.sent.failed, done.sent.dead)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=poll_seconds)
