"""``client``: the signer's own USB token, through a browser plug-in.

The platform hands out the digest (never the document) and waits; the plug-in signs it on
the user's machine and the user's client sends the detached CMS back to
``POST .../cases/{id}/signatures/{signature}``, where it is verified like any other.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from datetime import timedelta
from typing import Any, ClassVar

from app.core.db import utcnow
from app.signing import jws
from app.signing.canonical import DIGEST_ALGORITHM
from app.signing.providers import CertificateInfo, Failed, Pending, Signed, Signer, SignRequest


class ClientSideProvider:
    name: ClassVar[str] = "client"
    polled: ClassVar[bool] = False
    config_schema: ClassVar[Mapping[str, Any]] = {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "expires_in_seconds": {
                "type": "integer", "minimum": 60, "maximum": 86_400, "default": 900,
                "description": "How long the user has to sign with their token."},
        },
    }

    def check_config(self, config: Mapping[str, Any]) -> None:
        return None

    async def certificates(self, config: Mapping[str, Any],
                           signer: Signer) -> list[CertificateInfo]:
        return []  # the token's certificates are known to the plug-in, on the user's machine

    async def start(self, config: Mapping[str, Any], request: SignRequest) -> Signed | Pending:
        expires = utcnow() + timedelta(seconds=config.get("expires_in_seconds", 900))
        instructions: dict[str, Any] = {
            "digest": base64.b64encode(request.digest).decode(),
            "digest_algorithm": DIGEST_ALGORITHM, "label": request.label}
        if request.format == "jws":  # sign this payload as a compact JWS with x5c
            instructions.update(format="jws", alg="RS256", payload=base64.urlsafe_b64encode(
                jws.payload(request.digest)).rstrip(b"=").decode())
        else:  # sign the digest as a detached CMS
            instructions["format"] = "cms-detached"
        return Pending(transaction_id=request.request_id, expires_at=expires,
                       instructions=instructions)

    async def status(self, config: Mapping[str, Any], transaction_id: str,
                     state: Mapping[str, Any]) -> Signed | Pending | Failed:
        return Failed("awaiting-client", "The signature comes from the user's client.",
                      transaction_id)
