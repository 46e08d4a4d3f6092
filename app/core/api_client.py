"""The command line's own API client: it signs in as an API client (OAuth 2.0 client
credentials, ``NENTANG_CLIENT_ID`` and ``NENTANG_CLIENT_SECRET``) and acts with that
client's permissions, exactly as any integrator's system would."""

from __future__ import annotations

import httpx


class ApiFailed(Exception):
    pass


def problem_text(response: httpx.Response) -> str:
    """A problem+json answer as one line: status, code, detail and the fields at fault."""
    try:
        body = response.json()
        detail = body.get("detail") or body.get("title")
        fields = "; ".join(f"{e.get('pointer') or e.get('parameter')}: {e.get('detail')}"
                           for e in body.get("errors", []))
        return f"{response.status_code} {body.get('code')}: {detail}" + (
            f" ({fields})" if fields else "")
    except ValueError:
        return f"{response.status_code} {response.text[:200]}"


def signed_in(api: str, client_id: str, secret: str, *, timeout: httpx.Timeout | float = 30,
              transport: httpx.BaseTransport | None = None) -> httpx.Client:
    """An HTTP client on ``api`` carrying a fresh access token (open it with ``with``)."""
    with httpx.Client(base_url=api, timeout=timeout, transport=transport) as sign_in:
        response = sign_in.post("/oauth/token", data={"grant_type": "client_credentials"},
                                auth=(client_id, secret))
    if response.status_code != 200:
        raise ApiFailed(f"sign-in refused: {problem_text(response)}")
    return httpx.Client(base_url=api, timeout=timeout, transport=transport, headers={
        "Authorization": f"Bearer {response.json()['access_token']}"})
