"""Ways to sign in: an API client's credentials, a ready bearer token, or an official's own
session obtained in the browser (authorization code + PKCE, for command-line tools).

An :class:`Auth` knows when its token is due and which form to post to ``/oauth/token``; the
client does the posting (sync or async), so the logic lives here once.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import threading
import time
import webbrowser
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx

from nentang_sdk._core import register_route
from nentang_sdk.errors import AuthenticationError, NentangError, error_for

CLI_CLIENT_ID = "nentang-cli"
"""The public OAuth client the service registers for officials' command-line tools."""


class Auth(ABC):
    """Base class: supplies the ``Authorization`` header and refreshes it when due."""

    @abstractmethod
    def token(self) -> str | None:
        """The current access token, or None when one must be fetched first."""

    def refresh_form(self) -> tuple[dict[str, str], tuple[str, str] | None] | None:
        """The form (and HTTP basic credentials) that gets a new token, or None if this kind
        of credential cannot be refreshed."""
        return None

    def accept(self, answer: dict[str, Any]) -> None:
        """Keep the token endpoint's answer (a fixed token has nothing to keep)."""
        return None

    def invalidate(self) -> None:
        """Forget the current token (the service refused it; a fixed token cannot)."""
        return None


@dataclass
class BearerToken(Auth):
    """A token obtained elsewhere; never refreshed."""

    access_token: str

    def token(self) -> str | None:
        return self.access_token


@dataclass
class _Cached(Auth):
    refresh_before: float = 60.0
    """Seconds before expiry at which a new token is fetched, so no request carries a token
    that expires in flight (a token shorter-lived than twice this is renewed at half-life)."""
    clock: Callable[[], float] = field(default=time.monotonic, repr=False)
    _token: str | None = field(default=None, init=False, repr=False)
    _fresh_until: float = field(default=0.0, init=False, repr=False)

    def token(self) -> str | None:
        if self._token and self.clock() < self._fresh_until:
            return self._token
        return None

    def accept(self, answer: dict[str, Any]) -> None:
        self._token = str(answer["access_token"])
        lifetime = float(answer.get("expires_in") or 300)
        self._fresh_until = self.clock() + lifetime - min(self.refresh_before, lifetime / 2)

    def invalidate(self) -> None:
        self._token = None


@dataclass
class ClientCredentials(_Cached):
    """An API client's ID and secret (OAuth 2.0 client credentials). Tokens are cached and
    fetched again ``refresh_before`` seconds before they expire. ``scope`` narrows the token
    to some of the client's permissions."""

    client_id: str = ""
    client_secret: str = field(default="", repr=False)
    scope: str | None = None

    def refresh_form(self) -> tuple[dict[str, str], tuple[str, str] | None]:
        form = {"grant_type": "client_credentials"}
        if self.scope:
            form["scope"] = self.scope
        return form, (self.client_id, self.client_secret)


@dataclass
class UserSession(_Cached):
    """An official's session from :func:`login_with_browser`: refreshed with its rotating
    refresh token until the session's lifetime ends."""

    refresh_token: str = field(default="", repr=False)
    client_id: str = CLI_CLIENT_ID

    def refresh_form(self) -> tuple[dict[str, str], tuple[str, str] | None] | None:
        if not self.refresh_token:
            return None
        return {"grant_type": "refresh_token", "refresh_token": self.refresh_token,
                "client_id": self.client_id}, None

    def accept(self, answer: dict[str, Any]) -> None:
        super().accept(answer)
        self.refresh_token = str(answer.get("refresh_token") or self.refresh_token)


class LoginError(NentangError):
    """The browser sign-in did not complete (refused, timed out, or answered oddly)."""


def pkce_pair() -> tuple[str, str]:
    """A PKCE verifier and its S256 challenge (RFC 7636)."""
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode()).digest()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


class _Redirect(BaseHTTPRequestHandler):
    """Receives the one redirect that carries the code back to the tool."""

    box: dict[str, dict[str, list[str]]]

    def do_GET(self) -> None:
        query = parse_qs(urlsplit(self.path).query)
        self.box["query"] = query
        ok = "code" in query
        page = ("Đăng nhập thành công. Bạn có thể đóng cửa sổ này. / Signed in; you can close "
                "this window." if ok else "Đăng nhập không thành công. / Sign-in failed.")
        self.send_response(200 if ok else 400)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.end_headers()
        self.wfile.write(page.encode())

    def log_message(self, format: str, *args: Any) -> None:
        """Keep the tool's terminal clean."""


def login_with_browser(base_url: str, *, tenant: str | None = None, scope: str | None = None,
                       open_browser: Callable[[str], Any] = webbrowser.open,
                       timeout: float = 300.0, port: int = 0,
                       http: httpx.Client | None = None) -> UserSession:
    """Sign an official in through the service's sign-in page (authorization code + PKCE with
    a loopback redirect, RFC 8252) and return a session usable as ``Client(auth=...)``.

    ``open_browser`` receives the sign-in URL (the default opens the system browser; a tool on
    a server without one can print it instead). ``tenant`` pre-selects the official's unit.
    """
    verifier, challenge = pkce_pair()
    state = secrets.token_urlsafe(16)
    box: dict[str, dict[str, list[str]]] = {}

    class Handler(_Redirect):
        pass

    Handler.box = box
    server = HTTPServer(("127.0.0.1", port), Handler)
    server.timeout = timeout
    redirect_uri = f"http://127.0.0.1:{server.server_address[1]}/"
    params = {"response_type": "code", "client_id": CLI_CLIENT_ID, "redirect_uri": redirect_uri,
              "code_challenge": challenge, "code_challenge_method": "S256", "state": state}
    if scope:
        params["scope"] = scope
    if tenant:
        params["tenant"] = tenant
    try:
        opener = threading.Thread(target=open_browser,
                                  args=(f"{base_url.rstrip('/')}/oauth/authorize?"
                                        f"{urlencode(params)}",), daemon=True)
        opener.start()
        deadline = time.monotonic() + timeout
        while "query" not in box and time.monotonic() < deadline:
            server.handle_request()
    finally:
        server.server_close()
    query = box.get("query")
    if query is None:
        raise LoginError("No answer from the sign-in page in time.")
    if query.get("state") != [state]:
        raise LoginError("The sign-in answer does not belong to this request (state).")
    if "code" not in query:
        raise LoginError(f"Sign-in refused: {query.get('error', ['?'])[0]} "
                         f"{query.get('error_description', [''])[0]}".strip())
    form = {"grant_type": "authorization_code", "client_id": CLI_CLIENT_ID,
            "code": query["code"][0], "redirect_uri": redirect_uri, "code_verifier": verifier}
    owned = http is None
    client = http or httpx.Client(base_url=base_url, timeout=30)
    try:
        response = client.post("/oauth/token", data=form)
    finally:
        if owned:
            client.close()
    if response.status_code != 200:
        error = error_for(response)
        raise LoginError(str(error)) from error
    session = UserSession()
    session.accept(response.json())
    return session


def token_error(response: httpx.Response) -> AuthenticationError:
    """A refused token request as an :class:`AuthenticationError`, whatever its status."""
    error = error_for(response)
    if isinstance(error, AuthenticationError):
        return error
    return AuthenticationError(response, error.problem)


register_route("GET /oauth/authorize", "auth.login_with_browser")
