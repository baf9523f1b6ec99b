"""What every console page shares: templates, the session check, CSRF, errors, security headers."""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Awaitable, Callable
from concurrent.futures import Executor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar, cast
from urllib.parse import parse_qsl, quote, urlsplit

import jinja2
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..errors import JobsError
from . import presentation
from .api import LocalApi
from .sessions import SESSION_COOKIE, Session, SessionKeys

__all__ = ["PREFIX", "Pages", "SecurityHeaders", "action", "page", "quote_segment"]

log = logging.getLogger(__name__)

PREFIX = "/console"
#: Longest value of a form field or query parameter looked at (a job document is sent as a file field).
MAX_FIELD = 40_000
#: Largest form body read (a 32 KB document, escaped, and the settings around it).
MAX_FORM_BYTES = 256 * 1024

_HERE = Path(__file__).parent
T = TypeVar("T")
# A page's method: (self, request) -> response.
Method = TypeVar("Method", bound=Callable[..., Awaitable[Response]])


@dataclass
class Pages:
    """The parts a family of pages works with, and how they answer."""

    keys: SessionKeys
    api: LocalApi
    templates: jinja2.Environment
    # The control plane's handler thread: store reads wait there, never on the event loop.
    worker: Executor

    async def run(self, function: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self.worker, function, *args)

    @classmethod
    def environment(cls) -> jinja2.Environment:
        env = jinja2.Environment(
            loader=jinja2.FileSystemLoader(_HERE / "templates"),
            autoescape=True,
            undefined=jinja2.StrictUndefined,
        )
        env.globals.update(
            label=presentation.label, when=presentation.when, prefix=PREFIX, quote=quote_segment
        )
        return env

    def render(self, request: Request, name: str, /, http_status: int = 200, **context: Any) -> HTMLResponse:
        """The template ``name`` with ``context``, and the session's CSRF token for its forms."""
        session: Session | None = getattr(request.state, "session", None)
        html = self.templates.get_template(name).render(
            request=request, session=session, csrf=session.csrf_token if session else "", **context
        )
        return HTMLResponse(html, status_code=http_status)

    def refused(self, request: Request, error: JobsError) -> HTMLResponse:
        """A page saying what the API refused, with its status (404 for a job that does not exist)."""
        return self.render(
            request, "error.html", http_status=error.http_status, title=error.http_type, message=error.message
        )


def quote_segment(value: str) -> str:
    """A name as one path segment of a console URL."""
    return quote(value, safe="")


def page(pages_of: Callable[[Any], Pages]) -> Callable[[Method], Method]:
    """A page for signed-in operators; others are sent to sign in and brought back."""

    def decorate(endpoint: Method) -> Method:
        @functools.wraps(endpoint)
        async def guarded(self: Any, request: Request) -> Response:
            pages = pages_of(self)
            session = pages.keys.session(request.cookies.get(SESSION_COOKIE))
            if session is None:
                target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
                return RedirectResponse(f"{PREFIX}/sign-in?next={quote(target, safe='')}", status_code=303)
            request.state.session = session
            try:
                return await endpoint(self, request)
            except JobsError as error:
                return pages.refused(request, error)

        return cast(Method, guarded)

    return decorate


def action(pages_of: Callable[[Any], Pages]) -> Callable[[Method], Method]:
    """A state-changing request: a session, the session's CSRF token and, if sent, our own origin."""

    def decorate(endpoint: Method) -> Method:
        @functools.wraps(endpoint)
        async def guarded(self: Any, request: Request) -> Response:
            pages = pages_of(self)
            session = pages.keys.session(request.cookies.get(SESSION_COOKIE))
            if session is None:
                return HTMLResponse("Sign in first.", status_code=401)
            request.state.session = session
            if not same_origin(request):
                return HTMLResponse("Cross-site request refused.", status_code=403)
            form = await read_form(request)
            if form is None:
                return HTMLResponse("Form too large.", status_code=413)
            token = request.headers.get("x-csrf-token") or form.get("csrf")
            if not pages.keys.csrf_ok(session, token):
                return HTMLResponse("The form has expired: reload the page and try again.", status_code=403)
            request.state.form = form
            try:
                return await endpoint(self, request)
            except JobsError as error:
                return pages.refused(request, error)

        return cast(Method, guarded)

    return decorate


def same_origin(request: Request) -> bool:
    """Whether the browser says the request comes from a page of this host (no Origin: not a browser's)."""
    origin = request.headers.get("origin")
    if origin is None:
        return True
    return urlsplit(origin).netloc == request.headers.get("host", "")


async def read_form(request: Request) -> dict[str, str] | None:
    """The URL-encoded form, bounded before it is buffered; None when it is too large."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_FORM_BYTES:
        return None
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            return None
    try:
        pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True, errors="strict")
    except UnicodeDecodeError:
        return {}
    form: dict[str, str] = {}
    for name, value in pairs:
        if name in form:  # repeated fields (multi-selects) are joined by newlines
            form[name] += "\n" + value[:MAX_FIELD]
        else:
            form[name] = value[:MAX_FIELD]
    return form


class SecurityHeaders:
    """Headers every console response carries: no framing, no inline script, no caching of data."""

    HEADERS = (
        (
            b"content-security-policy",
            b"default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:;"
            b" connect-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
        ),
        (b"x-frame-options", b"DENY"),
        (b"x-content-type-options", b"nosniff"),
        (b"referrer-policy", b"same-origin"),
    )

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        static = scope["path"].startswith(f"{PREFIX}/static/")

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [*message.get("headers", []), *self.HEADERS]
                if not static:
                    headers.append((b"cache-control", b"no-store"))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)
