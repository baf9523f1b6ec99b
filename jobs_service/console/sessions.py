"""Console sign-in: the admin key in, a signed session cookie out, CSRF tokens bound to it.

A session is a cookie ``<payload>.<mac>``: the payload says when it expires and
carries a random id, the MAC is HMAC-SHA256 under a key derived from the admin
secret. Any worker sharing the admin key accepts it, and a new admin key ends
every session. Signing out forgets the id on the worker that served it until
the cookie would have expired anyway.

A CSRF token is the HMAC of the session id under a second derived key: a page
carries it in its forms and the console's script sends it as ``X-CSRF-Token``;
with ``SameSite=Strict`` cookies, a state-changing request from another site
then fails twice over.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

__all__ = ["SESSION_COOKIE", "SESSION_SECONDS", "Session", "SessionKeys", "SignInThrottle"]

SESSION_COOKIE = "iotjobs_console"
#: A working day; then the operator signs in again.
SESSION_SECONDS = 8 * 3600
# Longest cookie value looked at (a real one is about 120 characters).
_MAX_COOKIE = 512


@dataclass(frozen=True)
class Session:
    session_id: str
    expires_at: float
    csrf_token: str


def _derived(secret: str, purpose: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=purpose).derive(secret.encode())


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class SessionKeys:
    """Issues and checks session cookies for one admin key."""

    def __init__(
        self,
        access_key_id: str,
        secret_access_key: str,
        *,
        lifetime: float = SESSION_SECONDS,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self._access_key_id = access_key_id
        self._secret = secret_access_key
        self._session_key = _derived(secret_access_key, b"iotjobs console session")
        self._csrf_key = _derived(secret_access_key, b"iotjobs console csrf")
        self._lifetime = lifetime
        self._clock = wall_clock
        self._lock = threading.Lock()
        self._signed_out: dict[str, float] = {}  # session id -> when its cookie expires

    @property
    def lifetime(self) -> float:
        return self._lifetime

    def admits(self, access_key_id: str, secret_access_key: str) -> bool:
        """Whether the pair is the admin key (compared in constant time, both parts always)."""
        id_ok = hmac.compare_digest(access_key_id.encode(), self._access_key_id.encode())
        secret_ok = hmac.compare_digest(secret_access_key.encode(), self._secret.encode())
        return id_ok and secret_ok

    def issue(self) -> tuple[str, Session]:
        """A new session and its cookie value."""
        session_id = secrets.token_urlsafe(18)
        expires_at = self._clock() + self._lifetime
        payload = _b64(json.dumps({"id": session_id, "exp": int(expires_at)}).encode())
        cookie = f"{payload}.{self._mac(payload)}"
        return cookie, Session(session_id, int(expires_at), self.csrf_token(session_id))

    def session(self, cookie: str | None) -> Session | None:
        """The live session a cookie value stands for, or None (absent, forged, expired, signed out)."""
        if not cookie or len(cookie) > _MAX_COOKIE or cookie.count(".") != 1:
            return None
        payload, mac = cookie.split(".")
        if not hmac.compare_digest(mac.encode(), self._mac(payload).encode()):
            return None
        try:
            fields = json.loads(_unb64(payload))
            session_id, expires_at = str(fields["id"]), float(fields["exp"])
        except (ValueError, KeyError, TypeError):
            return None
        if expires_at <= self._clock():
            return None
        with self._lock:
            if session_id in self._signed_out:
                return None
        return Session(session_id, expires_at, self.csrf_token(session_id))

    def sign_out(self, session: Session) -> None:
        now = self._clock()
        with self._lock:
            self._signed_out = {sid: exp for sid, exp in self._signed_out.items() if exp > now}
            self._signed_out[session.session_id] = session.expires_at

    def csrf_token(self, session_id: str) -> str:
        return _b64(hmac.new(self._csrf_key, session_id.encode(), hashlib.sha256).digest())

    def csrf_ok(self, session: Session, token: str | None) -> bool:
        return token is not None and hmac.compare_digest(token.encode(), session.csrf_token.encode())

    def _mac(self, payload: str) -> str:
        return _b64(hmac.new(self._session_key, payload.encode(), hashlib.sha256).digest())


class SignInThrottle:
    """At most ``failures`` wrong keys per client address within ``window`` seconds."""

    def __init__(
        self, failures: int = 10, window: float = 60.0, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._failures = failures
        self._window = window
        self._clock = clock
        self._lock = threading.Lock()
        self._recent: dict[str, deque[float]] = {}

    def allowed(self, client: str) -> bool:
        with self._lock:
            recent = self._recent.get(client)
            if recent is None:
                return True
            self._expire(recent)
            if not recent:
                del self._recent[client]
            return len(recent) < self._failures

    def failed(self, client: str) -> None:
        with self._lock:
            if len(self._recent) > 10_000:  # a flood of addresses: forget the quiet ones
                for address in [a for a, times in self._recent.items() if not self._expire(times)]:
                    del self._recent[address]
            self._recent.setdefault(client, deque()).append(self._clock())

    def _expire(self, times: deque[float]) -> deque[float]:
        while times and times[0] <= self._clock() - self._window:
            times.popleft()
        return times
