"""``csc``: a licensed CA's remote signing service, by the Cloud Signature Consortium API (v2).

The platform authenticates as a client of the service (OAuth 2.0 client credentials), finds
the signer's credential (``credentials/list`` by the user's identifier, ``credentials/info``
for the certificate chain), prepares the CAdES signed attributes (:mod:`app.signing.cms`) and
asks ``signatures/signHash`` to sign their hash asynchronously (``operationMode`` ``A``): the
user confirms on their phone. The outcome arrives either as a callback to ``response_uri``,
authenticated by an HMAC over a timestamp and the body with the tenant's callback secret
(stale timestamps refused; a transaction completes once, so a replay changes nothing), or by
the worker polling ``signatures/signPolling``. Either way the bare signature value is wrapped
into the detached CMS the platform verifies and keeps.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import time
from collections.abc import Mapping
from datetime import timedelta
from typing import Any, ClassVar

import httpx

from app.core import metrics
from app.core.db import utcnow
from app.signing import cms, jws
from app.signing.providers import (
    CallbackRejected,
    CertificateInfo,
    Failed,
    Pending,
    ProviderUnavailable,
    Signed,
    Signer,
    SignRequest,
)

SIGNATURE_HEADER = "x-csc-signature"
CALLBACK_TOLERANCE_SECONDS = 300


def callback_signature(secret: str, timestamp: int, body: bytes) -> str:
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"


class RemoteSigningProvider:
    name: ClassVar[str] = "csc"
    polled: ClassVar[bool] = True
    config_schema: ClassVar[Mapping[str, Any]] = {
        "type": "object",
        "required": ["base_url", "client_id", "client_secret", "callback_secret"],
        "additionalProperties": False,
        "properties": {
            "base_url": {"type": "string", "pattern": "^https?://", "maxLength": 500,
                         "description": "The service's base URL (before /csc/v2)."},
            "client_id": {"type": "string", "minLength": 1, "maxLength": 200},
            "client_secret": {"type": "string", "minLength": 1, "maxLength": 500,
                              "writeOnly": True},
            "callback_secret": {"type": "string", "minLength": 16, "maxLength": 500,
                                "writeOnly": True, "description": "Shared with the service; "
                                "authenticates its callbacks."},
            "user_attribute": {"enum": ["external_id", "username", "email", "client_id",
                                        "principal_id"], "default": "external_id",
                               "description": "The user's attribute the service knows them "
                               "by (its userID)."},
            "expires_in_seconds": {"type": "integer", "minimum": 30, "maximum": 3600,
                                   "default": 300},
            "timeout_seconds": {"type": "number", "exclusiveMinimum": 0, "maximum": 120,
                                "default": 10},
        },
    }

    def check_config(self, config: Mapping[str, Any]) -> None:
        return None

    # ---- the protocol --------------------------------------------------------------------

    @metrics.signing_call("csc")
    async def _call(self, config: Mapping[str, Any], path: str,
                    body: Mapping[str, Any]) -> httpx.Response:
        base = config["base_url"].rstrip("/")
        try:
            async with httpx.AsyncClient(timeout=config.get("timeout_seconds", 10),
                                         follow_redirects=False, trust_env=False) as http:
                token = await http.post(f"{base}/oauth2/token",
                                        data={"grant_type": "client_credentials"},
                                        auth=(config["client_id"], config["client_secret"]))
                if token.status_code != 200:
                    raise ProviderUnavailable(f"the signing service refused the platform's "
                                              f"credentials ({token.status_code})")
                return await http.post(f"{base}/csc/v2/{path}", json=dict(body), headers={
                    "authorization": f"Bearer {token.json()['access_token']}"})
        except httpx.HTTPError as exc:
            raise ProviderUnavailable(f"the signing service did not answer: "
                                      f"{type(exc).__name__}") from exc
        except (ValueError, KeyError, TypeError) as exc:  # a token answer without a token
            raise ProviderUnavailable("the signing service's token answer is not "
                                      "understood") from exc

    async def _json(self, config: Mapping[str, Any], path: str,
                    body: Mapping[str, Any]) -> dict[str, Any]:
        response = await self._call(config, path, body)
        if response.status_code != 200:
            raise ProviderUnavailable(f"{path} answered {response.status_code}: "
                                      f"{_error(response)[1]}")
        try:
            found: dict[str, Any] = response.json()
        except ValueError as exc:
            raise ProviderUnavailable(f"{path} answered with no JSON") from exc
        if not isinstance(found, dict):
            raise ProviderUnavailable(f"{path} answered with no JSON object")
        return found

    async def _credential(self, config: Mapping[str, Any], signer: Signer,
                          wanted: str | None = None) -> tuple[str, list[bytes]]:
        user = signer.attributes.get(config.get("user_attribute", "external_id"))
        if not user:
            raise ProviderUnavailable("the user has no identifier the signing service knows "
                                      f"them by ({config.get('user_attribute', 'external_id')})")
        listed = await self._json(config, "credentials/list", {"userID": user})
        ids = [i for i in listed.get("credentialIDs", []) if wanted in (None, i)]
        if not ids:
            raise ProviderUnavailable("the signing service holds no credential for this user")
        info = await self._json(config, "credentials/info", {
            "credentialID": ids[0], "certificates": "chain", "certInfo": True})
        return ids[0], [base64.b64decode(c) for c in info["cert"]["certificates"]]

    async def certificates(self, config: Mapping[str, Any],
                           signer: Signer) -> list[CertificateInfo]:
        from cryptography import x509

        credential, chain = await self._credential(config, signer)
        leaf = x509.load_der_x509_certificate(chain[0])
        return [CertificateInfo(credential, chain[0], leaf.subject.rfc4514_string(),
                                leaf.not_valid_before_utc, leaf.not_valid_after_utc)]

    async def start(self, config: Mapping[str, Any], request: SignRequest) -> Signed | Pending:
        credential, chain = await self._credential(config, request.signer,
                                                   request.credential_id)
        state: dict[str, Any] = {"chain": [base64.b64encode(c).decode() for c in chain],
                                 "format": request.format}
        if request.format == "jws":
            signing_input = jws.signing_input(chain, request.digest)
            to_sign = jws.hash_to_sign(signing_input)
            state["signing_input"] = signing_input.decode()
        else:
            prepared = await cms.prepare(chain[0], chain, request.digest)
            to_sign = prepared.hash
            state["signed_attributes"] = base64.b64encode(prepared.signed_attributes).decode()
        expires = config.get("expires_in_seconds", 300)
        answer = await self._json(config, "signatures/signHash", {
            "credentialID": credential, "hashes": [base64.b64encode(to_sign).decode()],
            "hashAlgorithmOID": cms.HASH_OID, "signAlgo": cms.SIGN_ALGO_OID,
            "operationMode": "A", "validity_period": expires,
            "response_uri": request.callback_url, "clientData": request.label})
        if answer.get("signatures"):  # a service that signs at once
            return await self._signed(state, answer["signatures"][0], answer.get("responseID"))
        return Pending(transaction_id=str(answer["responseID"]),
                       expires_at=utcnow() + timedelta(seconds=expires),
                       instructions={"message": "Confirm the signature in your signing app."},
                       state=state)

    async def _signed(self, state: Mapping[str, Any], value_b64: str,
                      transaction_id: str | None) -> Signed:
        chain = [base64.b64decode(c) for c in state["chain"]]
        try:
            value = base64.b64decode(value_b64, validate=True)
        except (binascii.Error, ValueError):
            value = b""
        if state.get("format") == "jws":
            return Signed(jws.compact(state["signing_input"].encode(), value), transaction_id)
        built = await cms.assemble(chain[0], chain, base64.b64decode(state["signed_attributes"]),
                                   value)
        return Signed(built, transaction_id=transaction_id)

    async def status(self, config: Mapping[str, Any], transaction_id: str,
                     state: Mapping[str, Any]) -> Signed | Pending | Failed:
        response = await self._call(config, "signatures/signPolling",
                                    {"responseID": transaction_id})
        if response.status_code == 200:
            try:
                signatures = response.json().get("signatures")
            except (ValueError, AttributeError) as exc:
                raise ProviderUnavailable("signPolling answered with no JSON object") from exc
            if signatures:
                return await self._signed(state, signatures[0], transaction_id)
        return _outcome(*_error(response), transaction_id)

    async def callback(self, config: Mapping[str, Any], headers: Mapping[str, str],
                       body: bytes, transaction_id: str,
                       state: Mapping[str, Any]) -> Signed | Failed:
        """Authenticate a callback, then read it. Raises :class:`CallbackRejected`."""
        header = headers.get(SIGNATURE_HEADER, "")
        parts = dict(p.split("=", 1) for p in header.split(",") if "=" in p)
        try:
            stamp = int(parts.get("t", ""))
        except ValueError:
            raise CallbackRejected("missing or malformed signature header") from None
        expected = callback_signature(config["callback_secret"], stamp, body)
        # Bytes: a header may hold any latin-1 character, which str comparison refuses.
        if not hmac.compare_digest(expected.encode(), header.encode("latin-1", "replace")):
            raise CallbackRejected("the callback's signature does not verify")
        if abs(time.time() - stamp) > CALLBACK_TOLERANCE_SECONDS:
            raise CallbackRejected("the callback's timestamp is stale (a replay?)")
        try:
            payload = json.loads(body)
        except ValueError:
            raise CallbackRejected("the callback body is not JSON") from None
        if str(payload.get("responseID")) != transaction_id:
            raise CallbackRejected("the callback is about another transaction")
        if payload.get("signatures"):
            return await self._signed(state, payload["signatures"][0], transaction_id)
        outcome = _outcome(str(payload.get("error", "")),
                           str(payload.get("error_description", "")), transaction_id)
        return outcome if isinstance(outcome, Failed) else Failed(
            "provider-error", "The callback carried neither signatures nor an error.",
            transaction_id)


def _error(response: httpx.Response) -> tuple[str, str]:
    try:
        body = response.json()
        return str(body.get("error", "")), str(body.get("error_description", ""))
    except (ValueError, AttributeError):
        return "", response.text[:200]


def _outcome(error: str, description: str, transaction_id: str) -> Pending | Failed:
    if error == "access_denied":
        return Failed("rejected", f"The signer refused: {description}", transaction_id)
    if "expired" in error or "expired" in description.lower():
        return Failed("expired", f"The signing service let it expire: {description}",
                      transaction_id)
    if "not completed" in description.lower() or "in progress" in description.lower():
        return Pending(transaction_id, utcnow())
    return Failed("provider-error", f"{error}: {description}", transaction_id)
