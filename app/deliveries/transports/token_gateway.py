"""``token-gateway``: a provincial gateway that wants a bearer token first.

Some LGSPs front their services with a token exchange: an access key and secret (``POST
{token_url}`` with ``{"accessKey", "secretKey"}``) or OAuth 2.0 client credentials, for a
token that lasts a while. The token is cached per target and refreshed ``refresh_before``
seconds before it expires. The gateway's answers mean:

* ``401``: the token was refused: fetch a new one and try once more at once;
* ``403``: this unit may not call the service: a configuration error, not retried;
* ``429``: too many calls: retried, never sooner than ``Retry-After``.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, ClassVar

import httpx

from app.core.db import utcnow
from app.deliveries.transports import Attempt, Message, SendOptions, http_failure
from app.deliveries.transports.webhook import check_target, classify


@dataclass(frozen=True)
class _Token:
    value: str
    expires_at: datetime


class TokenRefused(Exception):
    def __init__(self, message: str, *, final: bool, status: int | None = None) -> None:
        super().__init__(message)
        self.final, self.status = final, status


class TokenGatewayTransport:
    name: ClassVar[str] = "token-gateway"
    config_schema: ClassVar[Mapping[str, Any]] = {
        "type": "object",
        "required": ["url", "token_url", "key", "secret"],
        "additionalProperties": False,
        "properties": {
            "url": {"type": "string", "pattern": "^https?://", "maxLength": 2000},
            "token_url": {"type": "string", "pattern": "^https?://", "maxLength": 2000},
            "grant": {"enum": ["access_key", "client_credentials"], "default": "access_key"},
            "key": {"type": "string", "minLength": 1, "maxLength": 500,
                    "description": "The access key, or the client id."},
            "secret": {"type": "string", "minLength": 1, "maxLength": 500, "writeOnly": True},
            "refresh_before": {"type": "integer", "minimum": 0, "maximum": 3600,
                               "default": 60},
        },
    }

    def __init__(self) -> None:
        self._tokens: dict[str, _Token] = {}
        # Concurrent sends to one gateway wait for one token exchange, not one each.
        self._locks: dict[str, asyncio.Lock] = {}

    def check_config(self, config: Mapping[str, Any]) -> None:
        return None

    def service(self, config: Mapping[str, Any]) -> str:
        return str(config["url"])

    @staticmethod
    def _cache_key(config: Mapping[str, Any]) -> str:
        material = f"{config['token_url']}\n{config['key']}\n{config['secret']}"
        return hashlib.sha256(material.encode()).hexdigest()

    async def _fetch(self, client: httpx.AsyncClient, config: Mapping[str, Any]) -> _Token:
        if config.get("grant", "access_key") == "client_credentials":
            response = await client.post(config["token_url"],
                                         data={"grant_type": "client_credentials"},
                                         auth=(config["key"], config["secret"]))
        else:
            response = await client.post(config["token_url"], json={
                "accessKey": config["key"], "secretKey": config["secret"]})
        if response.status_code in (400, 401, 403):
            raise TokenRefused(f"the gateway refused the credentials ({response.status_code})",
                               final=True, status=response.status_code)
        if response.status_code != 200:
            raise TokenRefused(f"the token exchange answered {response.status_code}",
                               final=False, status=response.status_code)
        try:
            body = response.json()
            value = body.get("access_token") or body["accessToken"]
            lifetime = int(body.get("expires_in") or body.get("expiresIn") or 300)
        except (ValueError, KeyError, TypeError):
            raise TokenRefused("the token exchange answered without a token",
                               final=False) from None
        return _Token(str(value), utcnow() + timedelta(seconds=lifetime))

    async def _token(self, client: httpx.AsyncClient, config: Mapping[str, Any], *,
                     fresh: bool = False) -> _Token:
        key = self._cache_key(config)
        seen = self._tokens.get(key)
        async with self._locks.setdefault(key, asyncio.Lock()):
            cached = self._tokens.get(key)
            early = timedelta(seconds=config.get("refresh_before", 60))
            # A fresh token is fetched unless another send already replaced the refused one.
            stale = fresh and cached is seen
            if stale or cached is None or cached.expires_at - early <= utcnow():
                cached = self._tokens[key] = await self._fetch(client, config)
            return cached

    async def send(self, client: httpx.AsyncClient, config: Mapping[str, Any],
                   message: Message, options: SendOptions) -> Attempt:
        for url in (config["url"], config["token_url"]):  # the credentials go to the second
            refused = await check_target(url, options)
            if refused is not None:
                return refused
        try:
            for fresh in (False, True):  # a refused token is renewed once, at once
                token = await self._token(client, config, fresh=fresh)
                async with client.stream("POST", config["url"], content=message.body, headers={
                        "authorization": f"Bearer {token.value}",
                        "content-type": "application/json",
                        "x-nentang-event-id": message.id}) as response:
                    if response.status_code == 401 and not fresh:
                        continue
                    if response.status_code == 403:
                        return Attempt(False, status=403, final=True, error="the gateway "
                                       "forbids this unit the service (403): check the "
                                       "subscription's credentials and the gateway's grants")
                    return classify(response)
        except TokenRefused as exc:
            return Attempt(False, status=exc.status, error=str(exc), final=exc.final)
        except httpx.HTTPError as exc:
            return http_failure(exc, options.timeout_seconds)
        raise AssertionError("unreachable")  # the loop always returns
