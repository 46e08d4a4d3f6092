"""The service itself: health, sign-in metadata and the OAuth endpoints an integrator may call
directly (the clients already fetch and renew tokens on their own)."""

from __future__ import annotations

from typing import Any

from nentang_sdk._core import Call, M, Resource, op
from nentang_sdk.models import TokenResponse


class Platform(Resource[M]):
    @op("GET /healthz")
    def health(self) -> Call[dict[str, str]]:
        """Liveness: the process answers."""
        return Call(dict[str, str], auth=False)

    @op("GET /readyz")
    def ready(self) -> Call[dict[str, Any]]:
        """Readiness: the database answers and the schema is current."""
        return Call(dict[str, Any], auth=False)


class OAuth(Resource[M]):
    @op("GET /.well-known/oauth-authorization-server")
    def metadata(self) -> Call[dict[str, Any]]:
        """RFC 8414 authorization server metadata."""
        return Call(dict[str, Any], auth=False)

    @op("GET /.well-known/openid-configuration")
    def openid_configuration(self) -> Call[dict[str, Any]]:
        return Call(dict[str, Any], auth=False)

    @op("GET /.well-known/jwks.json")
    def jwks(self) -> Call[dict[str, Any]]:
        """The public keys that verify the service's access tokens."""
        return Call(dict[str, Any], auth=False)

    @op("POST /oauth/token")
    def token(self, *, client_id: str, client_secret: str,
              scope: str | None = None) -> Call[TokenResponse]:
        """An access token for an API client (client credentials). You rarely need this: the
        client gets and renews its own tokens."""
        form = {"grant_type": "client_credentials", "client_id": client_id,
                "client_secret": client_secret}
        if scope:
            form["scope"] = scope
        return Call(TokenResponse, data=form, auth=False)

    @op("POST /oauth/revoke")
    def revoke(self, *, token: str, client_id: str | None = None) -> Call[dict[str, Any]]:
        """Revoke a refresh token (sign an official's session out, RFC 7009)."""
        form = {"token": token}
        if client_id:
            form["client_id"] = client_id
        return Call(dict[str, Any], data=form, auth=False)
