"""Signing in to the console with the admin key, and out again."""

from __future__ import annotations

import hmac
import secrets

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from .base import PREFIX, Pages, read_form, same_origin
from .sessions import SESSION_COOKIE, SignInThrottle

__all__ = ["SignIn"]

# The sign-in form's own CSRF token (there is no session yet): a cookie the form repeats.
_LOGIN_COOKIE = "iotjobs_console_login"


def _next_page(value: str | None) -> str:
    """Where to go after signing in: a console path, never another site."""
    if value and value.startswith(f"{PREFIX}/") and not value.startswith("//") and "\\" not in value:
        return value
    return f"{PREFIX}/jobs"


class SignIn:
    def __init__(self, pages: Pages, throttle: SignInThrottle | None = None) -> None:
        self.pages = pages
        self.throttle = throttle or SignInThrottle()

    async def form(self, request: Request, message: str = "", status: int = 200) -> Response:
        token = request.cookies.get(_LOGIN_COOKIE) or secrets.token_urlsafe(18)
        response = self.pages.render(
            request,
            "sign_in.html",
            http_status=status,
            message=message,
            login_csrf=token,
            next=_next_page(request.query_params.get("next")),
        )
        response.set_cookie(
            _LOGIN_COOKIE, token, httponly=True, samesite="strict", secure=_secure(request), path=PREFIX
        )
        return response

    async def submit(self, request: Request) -> Response:
        client = request.client.host if request.client else "-"
        form = await read_form(request)
        if form is None:
            return await self.form(request, "The form is too large.", 413)
        expected = request.cookies.get(_LOGIN_COOKIE, "")
        sent = form.get("csrf", "")
        if not same_origin(request) or not expected or not hmac.compare_digest(expected, sent):
            return await self.form(request, "The form has expired; please sign in again.", 403)
        if not self.throttle.allowed(client):
            return await self.form(request, "Too many failed sign-ins; wait a minute and try again.", 429)
        if not self.pages.keys.admits(form.get("accessKeyId", ""), form.get("secretAccessKey", "")):
            self.throttle.failed(client)
            return await self.form(request, "That access key ID and secret access key do not match.", 401)
        cookie, _ = self.pages.keys.issue()
        response = RedirectResponse(_next_page(form.get("next")), status_code=303)
        response.set_cookie(
            SESSION_COOKIE,
            cookie,
            max_age=int(self.pages.keys.lifetime),
            httponly=True,
            samesite="strict",
            secure=_secure(request),
            path=PREFIX,
        )
        response.delete_cookie(_LOGIN_COOKIE, path=PREFIX)
        return response

    async def sign_out(self, request: Request) -> Response:
        session = self.pages.keys.session(request.cookies.get(SESSION_COOKIE))
        form = await read_form(request) or {}
        if session is not None:
            if not same_origin(request) or not self.pages.keys.csrf_ok(session, form.get("csrf")):
                return Response("The form has expired: reload the page and try again.", status_code=403)
            self.pages.keys.sign_out(session)
        response = RedirectResponse(f"{PREFIX}/sign-in", status_code=303)
        response.delete_cookie(SESSION_COOKIE, path=PREFIX)
        return response


def _secure(request: Request) -> bool:
    """Cookies are Secure when the console is reached over TLS (directly or through a trusted proxy)."""
    return request.url.scheme == "https"
