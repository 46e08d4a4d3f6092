"""``nentang worker``'s loop: fire due SLA timers, send due deliveries, ask remote signing
services about pending signatures, wait, again.

Every step is safe with any number of workers running (each claims its own rows), so the
loop itself keeps no state beyond the HTTP client it reuses between rounds.

Stopping: on the first SIGTERM the worker claims nothing more and lets the round in progress
finish for up to ``grace_seconds``; past that (or on a second signal) the round is cancelled.
Either way the worker then *releases* every lease it still holds, so another worker takes
those timers and deliveries at once instead of after the lease expires. A worker killed
outright releases nothing: its leases expire and another worker takes the rows then.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from typing import Any

import httpx

from app.cases import timers
from app.core import metrics
from app.core.db import Database
from app.deliveries import worker as deliveries
from app.signing import steps as signing
from app.tenancy.scope import TenantScope, apply_scope

log = logging.getLogger("nentang.worker")


@dataclass
class Round:
    fired: timers.Fired
    sent: deliveries.Sent
    signatures: dict[str, int]


async def run_round(db: Database, owner: str, *, options: deliveries.Options, batch: int,
                    client: httpx.AsyncClient | None = None,
                    stop: asyncio.Event | None = None) -> Round:
    fired = await timers.run_once(db, owner, batch=batch, stop=stop)
    sent = await deliveries.run_once(db, owner, options=options, client=client, batch=batch,
                                     stop=stop)
    await metrics.observe_backlog(db)
    return Round(fired, sent, await signing.poll(db))


@dataclass
class Released:
    timers: int
    deliveries: int


async def release(db: Database, owner: str) -> Released:
    """Give up ``owner``'s leases on work it has not done (a clean stop)."""
    async with db.sessionmaker() as session, session.begin():
        await apply_scope(session, TenantScope.platform("worker"))
        return Released(await timers.release(session, owner),
                        await deliveries.release(session, owner))


@dataclass
class Stop:
    """The stop signals: ``asked`` ends the loop after the round in progress, ``forced``
    (a second signal) cancels that round at once."""

    asked: asyncio.Event
    forced: asyncio.Event

    @classmethod
    def new(cls) -> Stop:
        return cls(asyncio.Event(), asyncio.Event())

    def signal(self) -> None:
        (self.forced if self.asked.is_set() else self.asked).set()


async def _within_grace(work: asyncio.Future[Round], stop: Stop,
                        grace_seconds: float) -> Round | None:
    """The round's result; ``None`` if stopping cancelled it first."""
    asked = asyncio.ensure_future(stop.asked.wait())
    forced = asyncio.ensure_future(stop.forced.wait())
    try:
        first: set[asyncio.Future[Any]] = {work, asked}
        await asyncio.wait(first, return_when=asyncio.FIRST_COMPLETED)
        if not work.done():
            log.info("stopping: letting the round in progress finish (up to %g s)",
                     grace_seconds)
            either: set[asyncio.Future[Any]] = {work, forced}
            await asyncio.wait(either, timeout=grace_seconds,
                               return_when=asyncio.FIRST_COMPLETED)
        if not work.done():
            work.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await work
            log.warning("stopping: the round in progress was cancelled; its work is released")
            return None
        return work.result()
    finally:
        asked.cancel()
        forced.cancel()


async def run_forever(db: Database, owner: str, *, options: deliveries.Options,
                      poll_seconds: float, batch: int, stop: Stop,
                      grace_seconds: float = 20.0) -> Released:
    try:
        async with deliveries.new_client(options) as client:
            while not stop.asked.is_set():
                work = asyncio.ensure_future(
                    run_round(db, owner, options=options, batch=batch, client=client,
                              stop=stop.asked))
                try:
                    done = await _within_grace(work, stop, grace_seconds)
                except Exception:  # a bad row or a lost connection must not stop every tenant
                    log.exception("worker round failed; retrying after the poll interval")
                    done = None
                if done is not None:
                    _log_round(done)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.asked.wait(), timeout=poll_seconds)
    finally:
        released = await asyncio.shield(release(db, owner))
        if released.timers or released.deliveries:
            log.info("released %d timers and %d deliveries for other workers",
                     released.timers, released.deliveries)
    return released


def _log_round(done: Round) -> None:
    if done.fired.claimed:
        log.info("fired %d timers (%d skipped, %d errors)", done.fired.fired,
                 done.fired.skipped, len(done.fired.errors))
    if any(s != "pending" for s in done.signatures):
        log.info("settled signatures: %s", done.signatures)
    if done.sent.claimed:
        log.info("sent %d deliveries (%d to retry, %d dead)", done.sent.delivered,
                 done.sent.failed, done.sent.dead)
