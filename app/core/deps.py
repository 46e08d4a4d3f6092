"""Request-level dependencies shared by every domain."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.config import Settings
from app.core.db import Database
from app.core.problems import conflict

# Dependencies are ``async def`` even when they do not await: FastAPI runs plain ``def``
# dependencies in its thread pool, a thread hop per dependency per request. The hot path
# (session, principal) reads app.state directly rather than through sub-dependencies.


async def get_settings_dep(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    """One transaction per request, committed before the response is sent.

    A constraint violation that a service did not translate becomes a 409 that names no
    values, so a uniqueness clash never reveals what exists in another tenant.
    """
    db: Database = request.app.state.db
    try:
        async with db.sessionmaker() as session, session.begin():
            yield session
    except IntegrityError as exc:
        raise conflict("constraint-violation", "The change conflicts with existing data.") from exc


Session = Annotated[AsyncSession, Depends(get_session, scope="function")]
AppSettings = Annotated[Settings, Depends(get_settings_dep)]
