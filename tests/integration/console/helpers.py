"""Driving the console as operators do: a signed-in HTTP client, a browser, and a device to watch."""

from __future__ import annotations

import json
import re
from contextlib import contextmanager

import httpx

from ..clients import paho_client, subscribe
from ..conftest import ACCESS_KEY_ID, SECRET

CSRF = re.compile(r'name="csrf" value="([^"]*)"')


def csrf_of(html: str) -> str:
    match = CSRF.search(html)
    assert match, "the page has no form with a CSRF token"
    return match.group(1)


def signed_in(server, *, secret: str = SECRET) -> httpx.Client:
    """An HTTP client holding a console session (the sign-in form, filled in as a browser does).

    The caller closes it.
    """
    client = httpx.Client(base_url=server.http_url, follow_redirects=False, timeout=10)
    form = client.get("/console/sign-in")
    answer = client.post(
        "/console/sign-in",
        data={
            "csrf": csrf_of(form.text),
            "accessKeyId": ACCESS_KEY_ID,
            "secretAccessKey": secret,
            "next": "/console/jobs",
        },
    )
    assert answer.status_code == 303, answer.text
    return client


class Device:
    """A thing on MQTT that reports what the test says, each report answered before the next."""

    def __init__(self, client, thing: str) -> None:
        self.client = client
        self.thing = thing
        subscribe(client, f"$aws/things/{thing}/jobs/#")

    def report(self, job_id: str, status: str, details: dict[str, str] | None = None) -> None:
        topic = f"$aws/things/{self.thing}/jobs/{job_id}/update"
        token = f"{job_id}-{status}-{len(self.client.inbox.items)}"
        body = {"status": status, "clientToken": token, **({"statusDetails": details} if details else {})}
        self.client.publish(topic, json.dumps(body), qos=1)
        reply = self.client.inbox.wait_for(
            lambda item: item[0].startswith(topic + "/") and json.loads(item[1]).get("clientToken") == token
        )
        assert reply[0].endswith("/accepted"), reply


@contextmanager
def device(server, thing: str):
    with paho_client(server.mqtt_host, server.mqtt_port, thing) as client:
        yield Device(client, thing)
