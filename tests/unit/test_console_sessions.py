"""Console sessions: signed cookies, CSRF tokens, sign-out, the sign-in throttle, where sign-in leads."""

from iot_jobs_bridge.jobs_service.console.auth_pages import _next_page
from iot_jobs_bridge.jobs_service.console.sessions import SessionKeys, SignInThrottle


class Clock:
    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_a_cookie_stands_for_its_session_until_it_expires():
    clock = Clock()
    keys = SessionKeys("AKID", "secret", lifetime=60, wall_clock=clock)
    cookie, session = keys.issue()
    assert keys.session(cookie) == session
    clock.now += 59
    assert keys.session(cookie) is not None
    clock.now += 1
    assert keys.session(cookie) is None


def test_forged_and_foreign_cookies_stand_for_nothing():
    keys = SessionKeys("AKID", "secret")
    cookie, _ = keys.issue()
    payload, mac = cookie.split(".")
    other_cookie, _ = SessionKeys("AKID", "another secret").issue()
    altered = "B" if mac.endswith("A") else "A"  # a MAC ends in "A" one time in sixteen
    for forged in (
        f"{payload}.{mac[:-1]}{altered}",
        f"{payload}x.{mac}",
        other_cookie,
        "",
        None,
        "no-dot",
        "a.b.c",
        "x" * 600 + "." + mac,
        "!!!." + mac,
    ):
        assert keys.session(forged) is None, forged


def test_signing_out_ends_that_session_only():
    keys = SessionKeys("AKID", "secret")
    first, session = keys.issue()
    second, _ = keys.issue()
    keys.sign_out(session)
    assert keys.session(first) is None
    assert keys.session(second) is not None


def test_csrf_tokens_belong_to_one_session():
    keys = SessionKeys("AKID", "secret")
    _, one = keys.issue()
    _, two = keys.issue()
    assert keys.csrf_ok(one, one.csrf_token)
    assert not keys.csrf_ok(one, two.csrf_token)
    assert not keys.csrf_ok(one, None)
    assert not keys.csrf_ok(one, "")


def test_only_the_admin_key_signs_in():
    keys = SessionKeys("AKID", "secret")
    assert keys.admits("AKID", "secret")
    assert not keys.admits("AKID", "Secret")
    assert not keys.admits("akid", "secret")
    assert not keys.admits("", "")
    assert not keys.admits("AKID", "secret\u00e9")


def test_the_throttle_slows_one_address_and_forgets_after_the_window():
    clock = Clock()
    throttle = SignInThrottle(failures=3, window=60, clock=clock)
    for _ in range(3):
        assert throttle.allowed("10.0.0.1")
        throttle.failed("10.0.0.1")
    assert not throttle.allowed("10.0.0.1")
    assert throttle.allowed("10.0.0.2")
    clock.now += 60
    assert throttle.allowed("10.0.0.1")


def test_sign_in_leads_only_to_console_pages():
    assert _next_page("/console/jobs/j1?status=FAILED") == "/console/jobs/j1?status=FAILED"
    for elsewhere in (
        None,
        "",
        "https://evil.example/",
        "//evil.example/console/",
        "/consolex",
        "/console/\\evil",
    ):
        assert _next_page(elsewhere) == "/console/jobs", elsewhere
