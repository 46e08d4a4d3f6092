"""The OpenID Connect provider a unit's officials sign in with (units without one of their
own use their nearest ancestor's)."""

from __future__ import annotations

from collections.abc import Sequence

from nentang_sdk._core import NO_CONTENT, Call, M, Resource, body, op
from nentang_sdk.models import IdentityProvider

IDENTITY_PROVIDER = "/api/v1/tenants/{tenant}/identity-provider"


class IdentityProviders(Resource[M]):
    @op("GET " + IDENTITY_PROVIDER)
    def get(self, tenant: str, /) -> Call[IdentityProvider]:
        """The provider in force here: the unit's own or the nearest ancestor's
        (``inherited``); :class:`~nentang_sdk.errors.NotFoundError` when none. The client
        secret is never shown (``has_client_secret``)."""
        return Call(IdentityProvider, tenant)

    @op("PUT " + IDENTITY_PROVIDER)
    def replace(self, tenant: str, /, *, display_name: str, issuer: str, client_id: str,
                client_secret: str | None = None, scopes: str | None = None,
                match_claim: str | None = None, jit_enabled: bool | None = None,
                jit_roles: Sequence[str] | None = None) -> Call[IdentityProvider]:
        """Set the unit's own provider, replacing any it had.

        ``issuer`` exactly as the provider's discovery document spells it; ``client_secret``
        is required the first time and kept when left out later; ``scopes`` are
        space-separated and include ``openid``; ``match_claim`` is the ID-token claim whose
        value is a user's ``external_id``; with ``jit_enabled`` an unknown official is
        created at the first sign-in with ``jit_roles`` (roles you may grant here). Register
        the answer's ``redirect_uri`` at the provider."""
        return Call(IdentityProvider, tenant, json=body(
            display_name=display_name, issuer=issuer, client_id=client_id,
            client_secret=client_secret, scopes=scopes, match_claim=match_claim,
            jit_enabled=jit_enabled, jit_roles=list(jit_roles) if jit_roles is not None else None))

    @op("DELETE " + IDENTITY_PROVIDER)
    def delete(self, tenant: str, /) -> Call[None]:
        """Remove the unit's own provider (an inherited one can be changed only where it is
        defined: :class:`~nentang_sdk.errors.PermissionDeniedError`)."""
        return Call(NO_CONTENT, tenant)
