"""A remote signing service for tests, speaking the Cloud Signature Consortium API (v2) over
real HTTP on loopback, with the asynchronous mode a user confirms on their phone.

* ``POST /oauth2/token``: client credentials (HTTP Basic) for a bearer token; 401 otherwise.
* ``POST /csc/v2/credentials/list`` ``{userID}`` and ``credentials/info`` ``{credentialID}``.
* ``POST /csc/v2/signatures/signHash`` with ``operationMode: "A"``: a ``responseID``; the
  user then confirms (:meth:`CscSimulator.confirm`, or on their own after
  ``confirm_after_polls`` polls: a slow confirmation), refuses (:meth:`reject`) or lets it
  lapse (:meth:`expire`). With ``sign_at_once`` the signature comes back at once; with
  ``delay`` every answer comes late (a service that times out).
* ``POST /csc/v2/signatures/signPolling`` ``{responseID}``: the signatures, or a 400 saying
  it is not completed, was refused (``access_denied``) or expired (``expired_transaction``).
* Callbacks: when a transaction settles, the service would POST the outcome to the request's
  ``response_uri``, signed ``X-CSC-Signature: t=<unix>,v1=<HMAC-SHA256 hex>``. The platform
  under test is served in-process, so the simulator keeps each callback it would send in
  :attr:`callbacks` (URL, headers, body) for the test to deliver, as often as it likes.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, utils

from tests.http_servers import serve
from tests.pki import Identity

CLIENT_ID, CLIENT_SECRET = "nentang-platform", "csc-client-secret"
CALLBACK_SECRET = "callback-secret-shared-with-the-ca"


@dataclass
class Transaction:
    response_id: str
    credential: str
    hashes: list[str]
    response_uri: str | None
    state: str = "pending"  # pending | signed | rejected | expired
    polls: int = 0
    signatures: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Callback:
    url: str
    headers: dict[str, str]
    body: bytes


class CscSimulator:
    def __init__(self, callback_secret: str = CALLBACK_SECRET) -> None:
        self.callback_secret = callback_secret
        self.credentials: dict[str, tuple[str, Identity]] = {}  # id -> (user, identity)
        self.transactions: dict[str, Transaction] = {}
        self.callbacks: list[Callback] = []
        self.requests: list[tuple[str, dict[str, Any]]] = []
        self.tokens: set[str] = set()
        self.confirm_after_polls: int | None = None
        self.sign_at_once = False
        self.delay = 0.0  # seconds before each answer: a slow or hanging service
        self._lock = threading.Lock()
        self.url = ""

    def enroll(self, user: str, identity: Identity) -> str:
        credential = f"cred-{len(self.credentials) + 1}"
        self.credentials[credential] = (user, identity)
        return credential

    # ---- the user, on their phone -------------------------------------------------------

    def _sign(self, transaction: Transaction) -> None:
        identity = self.credentials[transaction.credential][1]
        transaction.signatures = [base64.b64encode(identity.key.sign(  # type: ignore[call-arg]
            base64.b64decode(h), padding.PKCS1v15(),  # type: ignore[arg-type]
            utils.Prehashed(hashes.SHA256()))).decode() for h in transaction.hashes]
        transaction.state = "signed"

    def confirm(self, response_id: str) -> None:
        with self._lock:
            transaction = self.transactions[response_id]
            self._sign(transaction)
            self._queue_callback(transaction)

    def reject(self, response_id: str) -> None:
        with self._lock:
            transaction = self.transactions[response_id]
            transaction.state = "rejected"
            self._queue_callback(transaction)

    def expire(self, response_id: str) -> None:
        with self._lock:
            self.transactions[response_id].state = "expired"

    def outcome(self, transaction: Transaction) -> dict[str, Any]:
        if transaction.state == "signed":
            return {"responseID": transaction.response_id, "signatures": transaction.signatures}
        if transaction.state == "rejected":
            return {"responseID": transaction.response_id, "error": "access_denied",
                    "error_description": "The user rejected the signature request"}
        if transaction.state == "expired":
            return {"responseID": transaction.response_id, "error": "expired_transaction",
                    "error_description": "The signature request expired"}
        return {"error": "invalid_request",
                "error_description": "The signature request is not completed yet"}

    def signed_callback(self, url: str, payload: dict[str, Any], *,
                        timestamp: int | None = None, secret: str | None = None) -> Callback:
        body = json.dumps(payload).encode()
        stamp = int(time.time()) if timestamp is None else timestamp
        mac = hmac.new((secret or self.callback_secret).encode(), f"{stamp}.".encode() + body,
                       hashlib.sha256).hexdigest()
        return Callback(url, {"content-type": "application/json",
                              "x-csc-signature": f"t={stamp},v1={mac}"}, body)

    def _queue_callback(self, transaction: Transaction) -> None:
        if transaction.response_uri:
            self.callbacks.append(self.signed_callback(transaction.response_uri,
                                                       self.outcome(transaction)))

    # ---- the service ----------------------------------------------------------------------

    def _handle(self, path: str, headers: dict[str, str], body: bytes) -> tuple[int, Any]:
        if path == "/oauth2/token":
            expected = base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()
            if headers.get("authorization") != f"Basic {expected}":
                return 401, {"error": "invalid_client"}
            token = secrets.token_urlsafe(16)
            self.tokens.add(token)
            return 200, {"access_token": token, "token_type": "Bearer", "expires_in": 3600}
        if headers.get("authorization", "").removeprefix("Bearer ") not in self.tokens:
            return 401, {"error": "invalid_token"}
        request = json.loads(body or b"{}")
        self.requests.append((path, request))
        if path == "/csc/v2/credentials/list":
            return 200, {"credentialIDs": [c for c, (user, _) in self.credentials.items()
                                           if user == request.get("userID")]}
        if path == "/csc/v2/credentials/info":
            found = self.credentials.get(request.get("credentialID", ""))
            if found is None:
                return 400, {"error": "invalid_request", "error_description": "Invalid "
                             "parameter credentialID"}
            identity = found[1]
            chain = [identity.certificate, *identity.chain]
            return 200, {"key": {"status": "enabled", "algo": ["1.2.840.113549.1.1.1"],
                                 "len": 2048},
                         "cert": {"status": "valid", "certificates": [
                             base64.b64encode(c.public_bytes(serialization.Encoding.DER))
                             .decode() for c in chain]},
                         "authMode": "oauth2code", "multisign": 1}
        if path == "/csc/v2/signatures/signHash":
            if request.get("credentialID") not in self.credentials:
                return 400, {"error": "invalid_request", "error_description": "Invalid "
                             "parameter credentialID"}
            transaction = Transaction(secrets.token_hex(8), request["credentialID"],
                                      request["hashes"], request.get("response_uri"))
            self.transactions[transaction.response_id] = transaction
            if self.sign_at_once:
                self._sign(transaction)
                return 200, {"signatures": transaction.signatures}
            return 200, {"responseID": transaction.response_id}
        if path == "/csc/v2/signatures/signPolling":
            transaction = self.transactions.get(request.get("responseID", ""))
            if transaction is None:
                return 400, {"error": "invalid_request", "error_description": "Invalid "
                             "parameter responseID"}
            transaction.polls += 1
            if (transaction.state == "pending" and self.confirm_after_polls is not None
                    and transaction.polls > self.confirm_after_polls):
                self._sign(transaction)
            if transaction.state == "signed":
                return 200, {"signatures": transaction.signatures}
            return 400, self.outcome(transaction)
        return 404, {"error": "not_found"}

    def _respond(self, path: str, headers: dict[str, str],
                 body: bytes) -> tuple[int, dict[str, str], bytes]:
        if self.delay:
            time.sleep(self.delay)
        with self._lock:
            status, answer = self._handle(path, headers, body)
        return status, {"content-type": "application/json"}, json.dumps(answer).encode()

    @contextmanager
    def running(self) -> Iterator[CscSimulator]:
        with serve(self._respond) as base:
            self.url = base
            yield self
