"""The console over plain HTTP: who gets in, what protects changes, what hostile input gets."""

from __future__ import annotations

import json
import threading

import httpx
import pytest

from ..clients import Inbox
from ..conftest import ACCESS_KEY_ID, SECRET, start_server
from ..device_sdk.helpers import make_thing
from .helpers import csrf_of, device, signed_in

pytestmark = pytest.mark.integration

PAGES = [
    "/console/jobs",
    "/console/jobs/new",
    "/console/jobs/{job}",
    "/console/jobs/{job}/cancel",
    "/console/jobs/{job}/things/{thing}",
    "/console/jobs/{job}/things/{thing}/cancel",
    "/console/things",
    "/console/things/{thing}",
    "/console/groups",
    "/console/groups/{group}",
    "/console/schedules",
    "/console/templates",
]
ACTIONS = ["/console/jobs/new", "/console/jobs/{job}/cancel", "/console/jobs/{job}/things/{thing}/cancel"]


@pytest.fixture
def job(iot, unique):
    """A job on one thing in one group: (job id, thing, group)."""
    thing, group = f"{unique}-thing", f"{unique}-group"
    make_thing(iot, thing)
    iot.create_thing_group(thingGroupName=group)
    iot.add_thing_to_thing_group(thingGroupName=group, thingName=thing)
    arn = iot.describe_thing_group(thingGroupName=group)["thingGroupArn"]
    iot.create_job(jobId=f"{unique}-job", targets=[arn], document=json.dumps({"secret": f"{unique}-doc"}))
    return f"{unique}-job", thing, group


@pytest.fixture
def console(server):
    """An HTTP client signed in to the console."""
    client = signed_in(server)
    yield client
    client.close()


def _paths(paths, job):
    job_id, thing, group = job
    return [path.format(job=job_id, thing=thing, group=group) for path in paths]


def test_nothing_answers_without_a_session(server, job):
    with httpx.Client(base_url=server.http_url, follow_redirects=False) as anonymous:
        _refuses_everything(anonymous, server, job)


def _refuses_everything(anonymous, server, job):
    for path in _paths(PAGES, job):
        answer = anonymous.get(path)
        assert answer.status_code == 303, path
        assert answer.headers["location"].startswith("/console/sign-in?next=%2Fconsole"), path
    assert anonymous.get("/console/").headers["location"] == "/console/jobs"  # which sends one to sign in
    live = anonymous.get(f"/console/jobs/{job[0]}/live")
    assert live.status_code == 401
    for path in _paths(ACTIONS, job):
        answer = anonymous.post(path, data={"force": "on"})
        assert answer.status_code == 401, path
        assert job[0] not in answer.text
    assert server.iot().describe_job(jobId=job[0])["job"]["status"] == "IN_PROGRESS"
    sign_in = anonymous.get("/console/sign-in")
    assert 'name="accessKeyId"' in sign_in.text and 'name="secretAccessKey"' in sign_in.text
    assert job[0] not in sign_in.text


def test_every_page_answers_a_signed_in_operator(console, job):
    for path in _paths(PAGES, job):
        answer = console.get(path, follow_redirects=True)
        assert answer.status_code == 200, (path, answer.text)
    job_page = console.get(f"/console/jobs/{job[0]}").text
    assert f"{job[2]}</a>" in job_page  # the group target links to its members
    assert f'"secret": "{job[0][:-4]}-doc"' in job_page.replace("&#34;", '"')


def test_the_session_cookie_is_http_only_strict_and_expires(server):
    with httpx.Client(base_url=server.http_url, follow_redirects=False) as client:
        form = client.get("/console/sign-in")
        answer = client.post(
            "/console/sign-in",
            data={"csrf": csrf_of(form.text), "accessKeyId": ACCESS_KEY_ID, "secretAccessKey": SECRET},
        )
    cookie = next(v for v in answer.headers.get_list("set-cookie") if v.startswith("iotjobs_console="))
    attributes = {part.strip().split("=")[0].lower() for part in cookie.split(";")[1:]}
    assert {"httponly", "max-age", "path", "samesite"} <= attributes
    assert "samesite=strict" in cookie.lower()
    assert "secure" not in attributes  # plain HTTP here; Secure over TLS
    assert answer.headers["location"] == "/console/jobs"


def test_a_wrong_key_is_refused_clearly_and_repeated_tries_are_slowed(tmp_path):
    own = start_server(tmp_path / "data")
    try:
        with httpx.Client(base_url=own.http_url, follow_redirects=False) as client:
            token = csrf_of(client.get("/console/sign-in").text)
            answers = [
                client.post(
                    "/console/sign-in",
                    data={"csrf": token, "accessKeyId": ACCESS_KEY_ID, "secretAccessKey": "x"},
                )
                for _ in range(11)
            ]
        assert [a.status_code for a in answers] == [401] * 10 + [429]
        assert "do not match" in answers[0].text
        assert "Too many failed sign-ins" in answers[-1].text
        cookies = [c for a in answers for c in a.headers.get_list("set-cookie")]
        assert not any(c.startswith("iotjobs_console=") for c in cookies)
    finally:
        assert own.stop() == 0


def test_changes_need_the_sessions_token_and_our_own_origin(server, console, job):
    job_id = job[0]
    token = csrf_of(console.get(f"/console/jobs/{job_id}/cancel").text)
    assert console.post(f"/console/jobs/{job_id}/cancel", data={}).status_code == 403
    assert console.post(f"/console/jobs/{job_id}/cancel", data={"csrf": "forged"}).status_code == 403
    elsewhere = console.post(
        f"/console/jobs/{job_id}/cancel", data={"csrf": token}, headers={"Origin": "http://evil.example"}
    )
    assert elsewhere.status_code == 403
    assert server.iot().describe_job(jobId=job_id)["job"]["status"] == "IN_PROGRESS"
    done = console.post(
        f"/console/jobs/{job_id}/cancel",
        data={"csrf": token, "force": "on"},
        headers={"Origin": server.http_url},
    )
    assert done.status_code == 303 and done.headers["location"] == f"/console/jobs/{job_id}"
    described = server.iot().describe_job(jobId=job_id)["job"]
    assert described["status"] == "CANCELED" and described["forceCanceled"] is True


def test_signing_out_ends_the_session_and_forged_cookies_get_nothing(server, console):
    page = console.get("/console/jobs")
    assert page.status_code == 200
    cookie = console.cookies["iotjobs_console"]
    assert console.post("/console/sign-out", data={"csrf": csrf_of(page.text)}).status_code == 303
    payload, _ = cookie.split(".")
    for stale in (cookie, f"{payload}.AAAA", "x" * 5000, "a.b.c", "", "%C3%A9.%00"):
        with httpx.Client(base_url=server.http_url, cookies={"iotjobs_console": stale}) as client:
            assert client.get("/console/jobs", follow_redirects=False).status_code == 303, stale


def test_every_console_answer_carries_the_security_headers(console):
    for path in ("/console/jobs", "/console/sign-in", "/console/jobs/no-such-job"):
        headers = console.get(path).headers
        assert "script-src 'self'" in headers["content-security-policy"]
        assert "frame-ancestors 'none'" in headers["content-security-policy"]
        assert headers["x-frame-options"] == "DENY"
        assert headers["cache-control"] == "no-store"
    assert console.get("/console/jobs/no-such-job").status_code == 404


def test_create_job_refusals_are_the_apis_own_words(console, iot, unique):
    thing = f"{unique}-t"
    make_thing(iot, thing)
    token = csrf_of(console.get("/console/jobs/new").text)
    form = {"csrf": token, "jobId": f"{unique}-j", "things": thing, "document": '{"op": "x"}'}
    slow = console.post("/console/jobs/new", data={**form, "maximumPerMinute": "0"})
    assert slow.status_code == 400
    assert "maximumPerMinute" in slow.text and "failed to satisfy constraint" in slow.text
    assert f'value="{unique}-j"' in slow.text  # the form comes back filled in
    words = console.post("/console/jobs/new", data={**form, "inProgressTimeout": "soon"})
    assert words.status_code == 400 and "inProgressTimeoutInMinutes" in words.text
    broken = console.post("/console/jobs/new", data={**form, "document": '{"op": '})
    assert broken.status_code == 400
    deep = console.post("/console/jobs/new", data={**form, "document": "[" * 5000 + "]" * 5000})
    assert deep.status_code == 400
    made = console.post(
        "/console/jobs/new",
        data={
            **form,
            "maximumPerMinute": "5",
            "abortType0": "FAILED",
            "abortThreshold0": "25",
            "abortMin0": "4",
            "retryType0": "FAILED",
            "retryCount0": "2",
            "inProgressTimeout": "30",
        },
    )
    assert made.status_code == 303 and made.headers["location"] == f"/console/jobs/{unique}-j"
    job = iot.describe_job(jobId=f"{unique}-j")["job"]
    assert job["jobExecutionsRolloutConfig"] == {"maximumPerMinute": 5}
    assert job["abortConfig"]["criteriaList"][0]["thresholdPercentage"] == 25
    assert job["timeoutConfig"] == {"inProgressTimeoutInMinutes": 30}
    retries = job["jobExecutionsRetryConfig"]["criteriaList"]
    assert retries == [{"failureType": "FAILED", "numberOfRetries": 2}]
    again = console.post("/console/jobs/new", data=form)
    assert again.status_code == 409 and "already exists" in again.text


def test_hostile_input_gets_a_4xx(console):
    token = csrf_of(console.get("/console/jobs/new").text)
    for path in (
        "/console/jobs/%F0%9F%92%A9%00",
        "/console/jobs/%ff%fe",
        "/console/things/" + "a" * 5000,
        "/console/jobs?status=NOPE",
        "/console/jobs?after=garbage",
        "/console/jobs/x/things/y?number=-1",
        "/console/groups?after=" + "%ff" * 100,
    ):
        assert 400 <= console.get(path).status_code < 500, path
    assert console.get("/console/jobs?q=" + "%ef%bf%bf" * 3000).status_code == 200  # bounded, then looked up
    huge = console.post(
        "/console/jobs/new",
        content=b"csrf=" + b"a" * 400_000,
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert huge.status_code == 413
    odd = console.post(
        "/console/jobs/new",
        content=b"csrf=" + token.encode() + b"&jobId=%ff%fe",
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert 400 <= odd.status_code < 500


def test_the_jobs_list_finds_by_text_and_pages_through_thousands(console, iot, unique):
    thing = f"{unique}-t"
    arn = make_thing(iot, thing)
    for n in range(55):
        iot.create_job(jobId=f"{unique}-{n:02d}", targets=[arn], document="{}")
    first = console.get("/console/jobs", params={"q": unique.upper()})
    assert first.text.count('data-job-id="') == 50
    assert f'{unique}-05"' in first.text and f'{unique}-04"' not in first.text  # newest first
    next_link = first.text.split('rel="next"')[0].rsplit('href="', 1)[1].split('"')[0].replace("&amp;", "&")
    rest = console.get("/console/jobs" + next_link)
    assert rest.text.count('data-job-id="') == 5 and f"{unique}-00" in rest.text
    assert 'rel="next"' not in rest.text


def test_an_executions_output_is_shown_escaped(server, console, iot, unique):
    thing = f"{unique}-t"
    arn = make_thing(iot, thing)
    iot.create_job(jobId=f"{unique}-j", targets=[arn], document="{}")
    with device(server, thing) as dev:
        dev.report(f"{unique}-j", "IN_PROGRESS")
        dev.report(
            f"{unique}-j",
            "FAILED",
            {"exitCode": "3", "stdout": "line one\n<script>alert(1)</script>", "stderr": "boom"},
        )
    page = console.get(f"/console/jobs/{unique}-j/things/{thing}").text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page and "<script>alert" not in page
    assert 'data-key="exitCode">3</pre>' in page and 'data-key="stderr">boom</pre>' in page


def test_a_job_page_stream_reports_each_change(server, console, iot, unique):
    thing = f"{unique}-t"
    arn = make_thing(iot, thing)
    job_id = f"{unique}-j"
    iot.create_job(jobId=job_id, targets=[arn], document="{}")
    events = Inbox()

    def follow() -> None:
        with console.stream("GET", f"/console/jobs/{job_id}/live", timeout=30) as stream:
            assert stream.headers["content-type"].startswith("text/event-stream")
            for line in stream.iter_lines():
                if line.startswith("data: "):
                    update = json.loads(line[6:])
                    events.put(update)
                    if update["status"] == "COMPLETED":
                        return

    reader = threading.Thread(target=follow, daemon=True)
    reader.start()
    events.wait_for(lambda update: "Queued <strong>1</strong>" in update["parts"]["job-summary"])
    with device(server, thing) as dev:
        dev.report(job_id, "IN_PROGRESS", {"step": "1"})
        events.wait_for(lambda update: "In progress <strong>1</strong>" in update["parts"]["job-summary"])
        dev.report(job_id, "SUCCEEDED")
    done = events.wait_for(lambda update: update["status"] == "COMPLETED")
    assert "Succeeded <strong>1</strong>" in done["parts"]["job-summary"]
    assert thing in done["parts"]["job-executions"]
    reader.join(10)
    assert not reader.is_alive()


def test_the_server_stops_at_once_with_a_live_page_open(tmp_path):
    own = start_server(tmp_path / "data")
    stopped = False
    try:
        iot = own.iot()
        arn = make_thing(iot, "watched")
        iot.create_job(jobId="watched-job", targets=[arn], document="{}")
        console = signed_in(own)
        events = Inbox()

        def follow() -> None:
            try:
                with console.stream("GET", "/console/jobs/watched-job/live", timeout=30) as stream:
                    for line in stream.iter_lines():
                        events.put(line)
            except httpx.HTTPError as error:  # the server may cut the stream rather than end it
                events.put(error)
            events.put("ended")

        reader = threading.Thread(target=follow, daemon=True)
        reader.start()
        events.wait_for(lambda line: isinstance(line, str) and line.startswith("data: "))
        assert own.stop(timeout=10) == 0
        stopped = True
        events.wait_for(lambda line: line == "ended")
        reader.join(5)
        console.close()
    finally:
        if not stopped:
            own.stop()
