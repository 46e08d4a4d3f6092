"""Events sent to other systems: subscriptions (which events, with which fields, to which
service), the deliveries the worker makes (inspect, audit, replay the dead ones) and the
keys that sign the unit's webhooks."""

from __future__ import annotations

import builtins
from collections.abc import Mapping, Sequence
from typing import Any

from nentang_sdk._core import NO_CONTENT, Call, M, Resource, body, op, paged
from nentang_sdk.models import Attempt, Delivery, NewSecret, Secret, Subscription
from nentang_sdk.resources._types import ID

TENANT = "/api/v1/tenants/{tenant}"
DELIVERY = TENANT + "/deliveries/{delivery_id}"
SUBSCRIPTION = TENANT + "/subscriptions/{subscription_id}"


class Deliveries(Resource[M]):
    @paged("GET " + TENANT + "/deliveries")
    def list(self, tenant: str, /, *, status: str | None = None,
             limit: int | None = None) -> Call[Delivery]:
        """Deliveries of this unit and the units below, newest first; ``status`` is
        ``"pending"``, ``"delivered"`` or ``"dead"`` (the dead letters)."""
        return Call(Delivery, tenant, params={"status": status, "limit": limit})

    @op("GET " + DELIVERY)
    def get(self, tenant: str, delivery_id: ID, /) -> Call[Delivery]:
        """One delivery, with the event it carries (``payload``)."""
        return Call(Delivery, tenant, delivery_id)

    @op("GET " + DELIVERY + "/attempts")
    def attempts(self, tenant: str, delivery_id: ID, /) -> Call[builtins.list[Attempt]]:
        """Every exchange of the delivery with its target, oldest first: body digest,
        status, outcome, latency, gateway message ids."""
        return Call(builtins.list[Attempt], tenant, delivery_id)

    @op("POST " + DELIVERY + "/replay")
    def replay(self, tenant: str, delivery_id: ID, /) -> Call[Delivery]:
        """Send a dead delivery again from its first attempt (once the target is fixed);
        :class:`~nentang_sdk.errors.ConflictError` for one that is not dead."""
        return Call(Delivery, tenant, delivery_id)


def _subscription(name: str, transport: str, target: Mapping[str, Any], events: Sequence[str],
                  fields: Sequence[str] | None, personal_data: str | None,
                  active: bool | None) -> dict[str, Any]:
    return body(name=name, transport=transport, target=dict(target),
                events=builtins.list(events),
                fields=builtins.list(fields) if fields is not None else None,
                personal_data=personal_data, active=active)


class Subscriptions(Resource[M]):
    """What a unit (and every unit below it) sends to other systems, set up without code."""

    @op("GET " + TENANT + "/subscriptions")
    def list(self, tenant: str, /) -> Call[builtins.list[Subscription]]:
        """The unit's subscriptions, by name (target secrets show as ``***``)."""
        return Call(builtins.list[Subscription], tenant)

    @op("POST " + TENANT + "/subscriptions")
    def create(self, tenant: str, /, *, name: str, transport: str, target: Mapping[str, Any],
               events: Sequence[str], fields: Sequence[str] | None = None,
               personal_data: str | None = None,
               active: bool | None = None) -> Call[Subscription]:
        """Send ``events`` (``"case.opened"``, ``"case.*"``, ``"*"``, ``"sharing:<event>"``...)
        with the case-data ``fields`` through ``transport`` (``"webhook"``: ``target``
        ``{"url", "secret"?}``; ``"xroad"``; ``"token-gateway"``; or an installed one).
        Personal-data fields go out only with ``personal_data="basic"`` or
        ``"sensitive"``."""
        return Call(Subscription, tenant, json=_subscription(
            name, transport, target, events, fields, personal_data, active))

    @op("GET " + SUBSCRIPTION)
    def get(self, tenant: str, subscription_id: ID, /) -> Call[Subscription]:
        return Call(Subscription, tenant, subscription_id)

    @op("PUT " + SUBSCRIPTION)
    def replace(self, tenant: str, subscription_id: ID, /, *, name: str, transport: str,
                target: Mapping[str, Any], events: Sequence[str],
                fields: Sequence[str] | None = None, personal_data: str | None = None,
                active: bool | None = None) -> Call[Subscription]:
        """Replace a subscription whole (what is left out takes its default: no fields, no
        personal data, active); events already queued keep their body."""
        return Call(Subscription, tenant, subscription_id, json=_subscription(
            name, transport, target, events, fields, personal_data, active))

    @op("DELETE " + SUBSCRIPTION)
    def delete(self, tenant: str, subscription_id: ID, /) -> Call[None]:
        """Delete a subscription; its pending deliveries go dead, not out."""
        return Call(NO_CONTENT, tenant, subscription_id)


class WebhookSecrets(Resource[M]):
    """The keys that sign the unit's webhooks (Standard Webhooks); units below without keys
    of their own use the nearest ancestor's."""

    @op("GET " + TENANT + "/webhook-secrets")
    def list(self, tenant: str, /) -> Call[builtins.list[Secret]]:
        """The unit's own keys, live and retired, newest first (never their values)."""
        return Call(builtins.list[Secret], tenant)

    @op("POST " + TENANT + "/webhook-secrets")
    def rotate(self, tenant: str, /, *, overlap_seconds: int | None = None) -> Call[NewSecret]:
        """A new signing key, its value in the answer only this once; the keys it replaces
        go on signing for ``overlap_seconds`` (default a day; 0 stops them at once), so
        receivers can switch without a gap."""
        return Call(NewSecret, tenant, json=body(overlap_seconds=overlap_seconds))
