"""The sign-in page served at ``/oauth/authorize``: plain HTML, no scripts, no external assets,
so it works on an air-gapped network. Vietnamese first; English when the client asks for it
with ``ui_locales`` (the web UI passes the official's language)."""

from __future__ import annotations

from html import escape

from starlette.responses import HTMLResponse, RedirectResponse, Response

from app.config import Settings
from app.core.requests import NO_STORE
from app.identity import login
from app.identity.login import AuthorizeRequest
from app.ui import catalogues

#: The page's own headers: no framing, no script at all, styles only from the service. No
#: form-action: the answer to the form is a redirect to the client (a loopback port for the
#: command-line client) or to the unit's identity provider, which form-action would block.
PAGE_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'self'; img-src 'self' data:; "
                               "frame-ancestors 'none'; base-uri 'none'",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}

_TOTP_STEP = ("totp-required", "bad-totp")

_PAGE = """<!doctype html>
<html lang="{lang}"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title} — Nentang</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="/admin/static/css/login.css">
</head><body>
<main>
<h1>{title}</h1>
{error}
<form method="post" action="/oauth/authorize">
{hidden}
<label>{t_tenant}
<input name="tenant" value="{tenant}" required autocomplete="organization"></label>
<label>{t_username}
<input name="username" value="{username}" required autocomplete="username"></label>
<label>{t_password}
<input name="password" type="password" required autocomplete="current-password"
{focus_password}></label>
<label>{t_totp}
<input name="totp" inputmode="numeric" autocomplete="one-time-code"{totp_attrs}></label>
<button type="submit">{t_submit}</button>
</form>
<form method="get" action="/oauth/federated">
{hidden}
<label>{t_federated}
<input name="tenant" value="{tenant}" required></label>
<button type="submit">{t_federated_submit}</button>
</form>
</main>
</body></html>
"""


def language(params: dict[str, str]) -> str:
    """The page's language from OpenID Connect's ``ui_locales`` (first supported tag)."""
    for tag in params.get("ui_locales", "").split():
        base = tag.split("-")[0].lower()
        if base in catalogues.LANGUAGES:
            return base
    return catalogues.DEFAULT_LANGUAGE


def _texts(lang: str) -> dict[str, str]:
    """The page's messages (``signin.*`` in the web UI's catalogues), without the prefix."""
    return {key.removeprefix("signin."): text
            for key, text in catalogues.catalogue(lang).items() if key.startswith("signin.")}


def hidden_fields(request: AuthorizeRequest, lang: str = "vi") -> str:
    fields = {**request.as_dict(), "response_type": "code", "code_challenge_method": "S256",
              "ui_locales": lang}
    return "\n".join(f'<input type="hidden" name="{escape(k)}" value="{escape(v)}">'
                     for k, v in fields.items() if v is not None)


def render(request: AuthorizeRequest, *, tenant: str = "", username: str = "",
           error_code: str | None = None, error: str | None = None, lang: str = "vi") -> str:
    texts = _texts(lang)
    if error:  # a known failure in the page's language; others as the service wrote them
        error = texts.get(f"failure_{error_code}", error)
    banner = (f'<p class="error" role="alert" id="error" data-error="{escape(error_code or "")}">'
              f"{escape(error)}</p>" if error else "")
    totp_step = error_code in _TOTP_STEP
    return _PAGE.format(
        lang=lang, title=texts["title"], error=banner, hidden=hidden_fields(request, lang),
        tenant=escape(tenant), username=escape(username),
        t_tenant=texts["tenant"], t_username=texts["username"], t_password=texts["password"],
        t_totp=texts["totp_needed"] if totp_step else texts["totp"], t_submit=texts["submit"],
        t_federated=texts["federated"], t_federated_submit=texts["federated_submit"],
        focus_password=(' autofocus aria-describedby="error"' if error and not totp_step
                        else ""),
        totp_attrs=(' required aria-describedby="error" aria-invalid="true"'
                    if totp_step else ""))


def render_problem(message: str, lang: str = "vi") -> str:
    """For a bad client or redirect URI, which must not be redirected back to."""
    texts = _texts(lang)
    return (f'<!doctype html><html lang="{lang}"><head><meta charset="utf-8"><title>'
            f'{texts["problem_title"]}</title><link rel="stylesheet" '
            f'href="/admin/static/css/login.css"></head><body><main><h1>{texts["problem"]}'
            f'</h1><p role="alert">{escape(message)}</p></main></body></html>')


def start(settings: Settings, params: dict[str, str]) -> AuthorizeRequest | Response:
    """The validated authorization request, or the response that ends the attempt here: a
    bad client or redirect URI gets a page, never a redirect (RFC 6749 §4.1.2.1); other
    errors go back to the client."""
    try:
        return login.parse_authorize(settings, params)
    except login.BadClient as exc:
        return HTMLResponse(render_problem(str(exc), language(params)), status_code=400,
                            headers={**NO_STORE, **PAGE_HEADERS})
    except login.AuthorizeError as exc:
        fallback = AuthorizeRequest(params["client_id"], params["redirect_uri"], "",
                                    params.get("state"), None)
        return RedirectResponse(fallback.error_redirect(exc.error, exc.description,
                                                        settings.issuer), status_code=302)
