"""The sign-in page served at ``/oauth/authorize``: plain HTML, no scripts, no external assets,
so it works on an air-gapped network. Vietnamese first."""

from __future__ import annotations

from html import escape

from starlette.responses import HTMLResponse, RedirectResponse, Response

from app.config import Settings
from app.core.requests import NO_STORE
from app.identity import login
from app.identity.login import AuthorizeRequest

_PAGE = """<!doctype html>
<html lang="vi"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Đăng nhập — Nentang</title>
<style>
body{{font-family:system-ui,sans-serif;max-width:26rem;margin:3rem auto;padding:0 1rem}}
label{{display:block;margin-top:.8rem}} input{{width:100%;padding:.4rem;box-sizing:border-box}}
button{{margin-top:1rem;padding:.5rem 1rem}}
.error{{color:#a00;border:1px solid #a00;padding:.5rem}}
</style></head><body>
<h1>Đăng nhập</h1>
{error}
<form method="post" action="/oauth/authorize">
{hidden}
<label>Mã đơn vị
<input name="tenant" value="{tenant}" required autocomplete="organization"></label>
<label>Tên đăng nhập
<input name="username" value="{username}" required autocomplete="username"></label>
<label>Mật khẩu
<input name="password" type="password" required autocomplete="current-password"></label>
<label>Mã xác thực (TOTP), nếu có
<input name="totp" inputmode="numeric" autocomplete="one-time-code"></label>
<button type="submit">Đăng nhập</button>
</form>
<form method="get" action="/oauth/federated">
{hidden}
<label>Hoặc đăng nhập qua hệ thống định danh của đơn vị — mã đơn vị
<input name="tenant" value="{tenant}" required></label>
<button type="submit">Đăng nhập qua nhà cung cấp định danh</button>
</form>
</body></html>
"""


def hidden_fields(request: AuthorizeRequest) -> str:
    fields = {**request.as_dict(), "response_type": "code", "code_challenge_method": "S256"}
    return "\n".join(f'<input type="hidden" name="{escape(k)}" value="{escape(v)}">'
                     for k, v in fields.items() if v is not None)


def render(request: AuthorizeRequest, *, tenant: str = "", username: str = "",
           error_code: str | None = None, error: str | None = None) -> str:
    banner = (f'<p class="error" role="alert" data-error="{escape(error_code or "")}">'
              f"{escape(error)}</p>" if error else "")
    return _PAGE.format(error=banner, hidden=hidden_fields(request), tenant=escape(tenant),
                        username=escape(username))


def render_problem(message: str) -> str:
    """For a bad client or redirect URI, which must not be redirected back to."""
    return (f'<!doctype html><html lang="vi"><head><meta charset="utf-8"><title>Lỗi đăng nhập'
            f'</title></head><body><h1>Không thể đăng nhập</h1><p role="alert">'
            f"{escape(message)}</p></body></html>")


def start(settings: Settings, params: dict[str, str]) -> AuthorizeRequest | Response:
    """The validated authorization request, or the response that ends the attempt here: a
    bad client or redirect URI gets a page, never a redirect (RFC 6749 §4.1.2.1); other
    errors go back to the client."""
    try:
        return login.parse_authorize(settings, params)
    except login.BadClient as exc:
        return HTMLResponse(render_problem(str(exc)), status_code=400, headers=NO_STORE)
    except login.AuthorizeError as exc:
        fallback = AuthorizeRequest(params["client_id"], params["redirect_uri"], "",
                                    params.get("state"), None)
        return RedirectResponse(fallback.error_redirect(exc.error, exc.description,
                                                        settings.issuer), status_code=302)
