"""Helpers the SDK's tests share: fresh units with their own API client, built through the
SDK itself against the live service."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from live_service import Service
from nentang_sdk import AsyncClient, Client


def new_code(prefix: str = "T") -> str:
    """A unit code no other test uses."""
    return f"{prefix}{uuid.uuid4().hex[:10].upper()}"


@dataclass(frozen=True)
class Unit:
    """A unit and an API client whose home it is."""

    code: str
    client_id: str
    client_secret: str
    base_url: str

    def client(self, base_url: str | None = None, **options: object) -> Client:
        return Client(base_url or self.base_url, client_id=self.client_id,
                      client_secret=self.client_secret, **options)  # type: ignore[arg-type]

    def async_client(self, base_url: str | None = None, **options: object) -> AsyncClient:
        return AsyncClient(base_url or self.base_url, client_id=self.client_id,
                           client_secret=self.client_secret, **options)  # type: ignore[arg-type]


def new_unit(admin: Client, service: Service, *, kind: str = "province",
             parent: str | None = None, roles: Sequence[str] = ("tenant_admin",)) -> Unit:
    """A new unit under ``parent`` (default: the root) with an API client holding ``roles``
    there."""
    code = new_code(kind[0].upper())
    admin.tenants.create(code=code, name=f"Đơn vị thử {code}", kind=kind,
                         parent=parent or service.root)
    created = admin.clients.create(code, name=f"client of {code}", roles=list(roles))
    assert created.client_secret
    return Unit(code, created.client_id, created.client_secret, service.base_url)


def client_in(admin: Client, service: Service, unit: str, roles: Sequence[str]) -> Unit:
    """Another API client in an existing unit, with other roles."""
    created = admin.clients.create(unit, name=f"{'/'.join(roles)} in {unit}", roles=list(roles))
    assert created.client_secret
    return Unit(unit, created.client_id, created.client_secret, service.base_url)
