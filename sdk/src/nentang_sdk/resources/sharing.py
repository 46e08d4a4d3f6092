"""Data sharing: the data services a unit publishes to other platforms, the gateway whose
signed tokens it trusts, the lookups that prefill its forms from remote registers, and the
gateway-facing calls (X-Road metaservices and the services themselves)."""

from __future__ import annotations

import builtins
from collections.abc import Mapping, Sequence
from typing import Any

from nentang_sdk._core import NO_CONTENT, Call, M, Resource, body, op
from nentang_sdk.models import DataService, GatewayTrust, Lookup

TENANT = "/api/v1/tenants/{tenant}"
GATEWAY = "/gateway/{tenant}"


def _gateway_headers(gateway_token: str, consumer: str | None) -> dict[str, str]:
    """The gateway's signed token is the only credential these calls carry (never the SDK
    client's own token); ``X-Road-Client``, when sent, must match the token's client."""
    headers = {"Authorization": f"Bearer {gateway_token}"}
    if consumer is not None:
        headers["X-Road-Client"] = consumer
    return headers


class Sharing(Resource[M]):
    # ---- what the unit's administrators manage ---------------------------------------------

    @op("GET " + TENANT + "/data-services")
    def data_services(self, tenant: str, /) -> Call[builtins.list[DataService]]:
        """Every version of the unit's data services."""
        return Call(builtins.list[DataService], tenant)

    @op("POST " + TENANT + "/data-services")
    def publish_data_service(self, tenant: str, /, *, name: str, title: str, source: str,
                             form: str, fields: Sequence[str], consumers: Sequence[str],
                             filters: Sequence[str] | None = None,
                             description: str | None = None,
                             personal_data: str | None = None) -> Call[DataService]:
        """Publish a data service: a new, immutable version of ``name`` (its code becomes
        ``name.vN``). ``source`` is ``"cases"`` or ``"submissions"`` of ``form``; ``fields``
        are exposed, ``filters`` (among them) may be filtered on; ``consumers`` are the X-Road
        subsystems allowed to call (``INSTANCE/CLASS/MEMBER/SUBSYSTEM``); exposing personal
        data takes ``personal_data="basic"`` or ``"sensitive"``."""
        return Call(DataService, tenant, json=body(
            name=name, title=title, description=description, source=source, form=form,
            fields=builtins.list(fields),
            filters=builtins.list(filters) if filters is not None else None,
            consumers=builtins.list(consumers), personal_data=personal_data))

    @op("GET " + TENANT + "/gateway-trust")
    def gateway_trust(self, tenant: str, /) -> Call[GatewayTrust]:
        """The gateway this unit trusts: its own, or the nearest ancestor's (``tenant`` says
        which); :class:`~nentang_sdk.errors.NotFoundError` when none."""
        return Call(GatewayTrust, tenant)

    @op("PUT " + TENANT + "/gateway-trust")
    def replace_gateway_trust(self, tenant: str, /, *, issuer: str, audience: str,
                              keys: Mapping[str, Any]) -> Call[GatewayTrust]:
        """Trust this gateway's signed tokens for calls to this unit and below: their
        ``iss``, the ``aud`` naming this unit, and the gateway's public keys (a JWKS)."""
        return Call(GatewayTrust, tenant, json={"issuer": issuer, "audience": audience,
                                                "keys": dict(keys)})

    @op("GET " + TENANT + "/lookups")
    def lookups(self, tenant: str, /) -> Call[builtins.list[Lookup]]:
        """The unit's own prefill lookups, by name."""
        return Call(builtins.list[Lookup], tenant)

    @op("PUT " + TENANT + "/lookups/{name}")
    def replace_lookup(self, tenant: str, name: str, /, *, form: str, field: str,
                       settings: Mapping[str, Any]) -> Call[Lookup]:
        """Declare or replace the lookup ``name``: when ``field`` of ``form`` is filled, the
        remote service prefills the form (units below use it too). ``settings``: ``url``
        (with ``{value}``) or ``xroad`` + ``parameter``; ``fills`` (form field → JSON Pointer
        into the answer); ``timeout_seconds``, ``cache_seconds``, ``failures_to_open``,
        ``open_seconds``."""
        return Call(Lookup, tenant, name, json={"form": form, "field": field,
                                                "settings": dict(settings)})

    @op("DELETE " + TENANT + "/lookups/{name}")
    def delete_lookup(self, tenant: str, name: str, /) -> Call[None]:
        return Call(NO_CONTENT, tenant, name)

    # ---- what the gateway calls, with its own signed token ---------------------------------

    @op("GET " + GATEWAY + "/listMethods")
    def list_methods(self, tenant: str, /, *, gateway_token: str,
                     consumer: str | None = None) -> Call[dict[str, Any]]:
        """X-Road metaservice: the unit's data services (latest versions), as
        ``{"service": [{"service_code", "title", ...}]}``.

        Authenticated by ``gateway_token`` (a token signed by the gateway the unit trusts),
        not by this client's credentials; ``consumer`` is sent as ``X-Road-Client``."""
        return Call(dict[str, Any], tenant, auth=False,
                    headers=_gateway_headers(gateway_token, consumer))

    @op("GET " + GATEWAY + "/allowedMethods")
    def allowed_methods(self, tenant: str, /, *, gateway_token: str,
                        consumer: str | None = None) -> Call[dict[str, Any]]:
        """X-Road metaservice: the services the token's consumer may call (see
        :meth:`list_methods`)."""
        return Call(dict[str, Any], tenant, auth=False,
                    headers=_gateway_headers(gateway_token, consumer))

    @op("GET " + GATEWAY + "/getOpenAPI")
    def service_openapi(self, tenant: str, /, *, service_code: str, gateway_token: str,
                        consumer: str | None = None) -> Call[dict[str, Any]]:
        """X-Road metaservice: the OpenAPI description of one service (``name`` or
        ``name.vN``) the consumer may call."""
        return Call(dict[str, Any], tenant, params={"serviceCode": service_code}, auth=False,
                    headers=_gateway_headers(gateway_token, consumer))

    @op("GET " + GATEWAY + "/services/{service_code}")
    def call_service(self, tenant: str, service_code: str, /, *, gateway_token: str,
                     filters: Mapping[str, str] | None = None, cursor: str | None = None,
                     consumer: str | None = None) -> Call[dict[str, Any]]:
        """Call a data service: one page of records, newest first, as ``{"items": [...],
        "next_cursor": ...}``; pass ``next_cursor`` back as ``cursor`` for the next page.
        ``filters`` are equality filters on the fields the service lets you filter on."""
        params: dict[str, Any] = dict(filters or {})
        params["cursor"] = cursor
        return Call(dict[str, Any], tenant, service_code, params=params, auth=False,
                    headers=_gateway_headers(gateway_token, consumer))
