"""The console in a real browser: headless Chromium, driven as an operator clicks through it.

Set ``IOTJOBS_CONSOLE_SCREENSHOTS=DIR`` to keep a screenshot of each main page
(``docs/console.md`` shows them).
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException, WebDriverException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.ui import Select, WebDriverWait

from iot_jobs_bridge.jobs_service.quick_run import command_document

from ..conftest import ACCESS_KEY_ID, SECRET
from ..device_sdk.helpers import DeviceProcess, endpoint, make_thing, status_is, wait_until
from .helpers import device

pytestmark = pytest.mark.integration

WAIT = 10.0
SCREENSHOTS = os.environ.get("IOTJOBS_CONSOLE_SCREENSHOTS")


@pytest.fixture(scope="module")
def browser():
    chromium, driver = shutil.which("chromium"), shutil.which("chromedriver")
    assert chromium and driver, (
        "the browser tests need Debian's chromium and chromium-driver: make system-deps"
    )
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1366,900"):
        options.add_argument(argument)
    chrome = webdriver.Chrome(service=Service(driver), options=options)
    yield chrome
    chrome.quit()


@pytest.fixture
def operator(browser, server):
    """The browser, signed in to the server's console (and signed out again after the test)."""
    browser.delete_all_cookies()
    sign_in(browser, server, SECRET)
    wait_for_text(browser, "h1", "Jobs")
    yield browser
    browser.delete_all_cookies()


def sign_in(browser, server, secret: str) -> None:
    browser.get(f"{server.http_url}/console/jobs")
    browser.find_element(By.NAME, "accessKeyId").send_keys(ACCESS_KEY_ID)
    browser.find_element(By.NAME, "secretAccessKey").send_keys(secret)
    browser.find_element(By.CSS_SELECTOR, "form button[type=submit]").click()


def settled(browser) -> WebDriverWait:
    """A wait that looks again when an element it found left the page meanwhile.

    A navigation or a replaced live part can detach an element between finding it and
    reading it; Chromium reports that as a stale reference or, mid-navigation, as a node
    that "does not belong to the document".
    """
    return WebDriverWait(browser, WAIT, ignored_exceptions=[StaleElementReferenceException, DetachedNode])


def wait_for_text(browser, css: str, text: str) -> None:
    settled(browser).until(lambda _: _text_present(browser, css, text))


def _text_present(browser, css: str, text: str) -> bool:
    try:
        return expected_conditions.text_to_be_present_in_element((By.CSS_SELECTOR, css), text)(browser)
    except WebDriverException as error:
        if "does not belong to the document" in (error.msg or ""):
            raise DetachedNode from error
        raise


class DetachedNode(Exception):
    """The element read was detached by a navigation before it could be read."""


def screenshot(browser, name: str) -> None:
    if SCREENSHOTS:
        Path(SCREENSHOTS).mkdir(parents=True, exist_ok=True)
        browser.save_screenshot(str(Path(SCREENSHOTS) / f"{name}.png"))


def test_signing_in_with_a_wrong_key_then_the_right_one_and_out(browser, server):
    browser.delete_all_cookies()
    sign_in(browser, server, "not-the-secret")
    wait_for_text(browser, "p.error", "do not match")
    screenshot(browser, "sign-in")
    browser.find_element(By.NAME, "accessKeyId").clear()
    browser.find_element(By.NAME, "accessKeyId").send_keys(ACCESS_KEY_ID)
    browser.find_element(By.NAME, "secretAccessKey").send_keys(SECRET)
    browser.find_element(By.CSS_SELECTOR, "form button[type=submit]").click()
    wait_for_text(browser, "h1", "Jobs")
    browser.find_element(By.CSS_SELECTOR, "form.sign-out button").click()
    wait_for_text(browser, "h1", "Sign in")
    browser.get(f"{server.http_url}/console/jobs")
    wait_for_text(browser, "h1", "Sign in")


def test_a_job_page_follows_the_rollout_without_reloading(operator, server, iot, unique):
    things = [f"{unique}-{n}" for n in range(3)]
    arns = [make_thing(iot, thing) for thing in things]
    job_id = f"{unique}-rollout"
    iot.create_job(
        jobId=job_id,
        targets=arns,
        document=json.dumps({"operation": "update", "version": "2.1"}),
        abortConfig={
            "criteriaList": [
                {
                    "failureType": "FAILED",
                    "action": "CANCEL",
                    "thresholdPercentage": 80,
                    "minNumberOfExecutedThings": 3,
                }
            ]
        },
    )
    operator.get(f"{server.http_url}/console/jobs/{job_id}")
    wait_for_text(operator, "#job-summary", "Queued 3")
    operator.execute_script("window.sameDocument = 'yes'")
    with device(server, things[0]) as first, device(server, things[1]) as second:
        first.report(job_id, "IN_PROGRESS", {"progress": "10%"})
        wait_for_text(operator, "#job-summary", "In progress 1")
        first.report(job_id, "SUCCEEDED")
        second.report(job_id, "FAILED", {"reason": "disk full"})
        wait_for_text(operator, "#job-summary", "Succeeded 1")
        wait_for_text(operator, "#job-summary", "Failed 1")
        wait_for_text(operator, "#job-abort", "1 (33.3%)")
        # The live parts are replaced as a whole: look elements up inside the waits.
        wait_for_text(operator, f'#job-executions tr[data-thing="{things[1]}"]', "Failed")
    assert operator.execute_script("return window.sameDocument") == "yes"
    wait_for_text(operator, "#job-summary", "Queued 1")
    screenshot(operator, "job")
    operator.get(f"{server.http_url}/console/jobs?q={unique}")
    wait_for_text(operator, "table.jobs", job_id)
    screenshot(operator, "jobs")


def test_canceling_a_job_and_an_execution_asks_first(operator, server, iot, unique):
    thing, other = f"{unique}-a", f"{unique}-b"
    arns = [make_thing(iot, thing), make_thing(iot, other)]
    job_id = f"{unique}-stop"
    iot.create_job(jobId=job_id, targets=arns, document="{}")
    with device(server, thing) as running:
        running.report(job_id, "IN_PROGRESS")
    operator.get(f"{server.http_url}/console/jobs/{job_id}/things/{thing}")
    operator.find_element(By.LINK_TEXT, "Cancel execution…").click()
    wait_for_text(operator, "h1", "Cancel the execution")
    assert iot.describe_job_execution(jobId=job_id, thingName=thing)["execution"]["status"] == "IN_PROGRESS"
    operator.find_element(By.CSS_SELECTOR, "form.confirm button").click()
    wait_for_text(operator, "dl.settings", "Canceled")
    assert iot.describe_job_execution(jobId=job_id, thingName=thing)["execution"]["status"] == "CANCELED"

    operator.get(f"{server.http_url}/console/jobs/{job_id}")
    operator.find_element(By.LINK_TEXT, "Cancel job…").click()
    wait_for_text(operator, "h1", f"Cancel job {job_id}?")
    operator.find_element(By.LINK_TEXT, "Keep it running").click()
    wait_for_text(operator, "#job-summary", "In progress")
    assert iot.describe_job(jobId=job_id)["job"]["status"] == "IN_PROGRESS"
    operator.find_element(By.LINK_TEXT, "Cancel job…").click()
    operator.find_element(By.ID, "force").click()
    operator.find_element(By.CSS_SELECTOR, "form.confirm button").click()
    wait_for_text(operator, "#job-summary", "Canceled 2")
    assert iot.describe_job(jobId=job_id)["job"]["status"] == "CANCELED"


def test_a_commands_output_is_readable_on_its_execution(operator, server, iot, unique):
    thing = f"{unique}-runner"
    arn = make_thing(iot, thing)
    agent = DeviceProcess("--thing", thing, "--endpoint", endpoint(server))
    try:
        document = command_document(["sh", "-c", "echo hello from the device; echo oops >&2; exit 4"])
        iot.create_job(jobId=f"{unique}-cmd", targets=[arn], document=json.dumps(document))
        wait_until(status_is(iot, f"{unique}-cmd", thing, "FAILED"), timeout=30, what="the command ran")
    finally:
        agent.close()
    operator.get(f"{server.http_url}/console/jobs/{unique}-cmd")
    link = f'#job-executions tr[data-thing="{thing}"] a'
    # A live part may be replaced between finding its link and clicking it: follow the link's address.
    target = settled(operator).until(
        lambda browser: browser.find_element(By.CSS_SELECTOR, link).get_attribute("href")
    )
    operator.get(target)
    wait_for_text(operator, 'pre[data-key="stdout"]', "hello from the device")
    assert operator.find_element(By.CSS_SELECTOR, 'pre[data-key="exitCode"]').text == "4"
    assert "oops" in operator.find_element(By.CSS_SELECTOR, 'pre[data-key="stderr"]').text
    screenshot(operator, "execution")


def test_creating_a_job_checks_its_document_before_sending_it(operator, server, iot, unique):
    thing = f"{unique}-new"
    make_thing(iot, thing)
    operator.get(f"{server.http_url}/console/jobs/new")
    operator.find_element(By.ID, "jobId").send_keys(f"{unique}-made")
    operator.find_element(By.ID, "target-filter").send_keys(unique)
    Select(operator.find_element(By.ID, "things")).select_by_value(thing)
    document = operator.find_element(By.ID, "document")
    document.clear()
    document.send_keys('{"operation": ')
    operator.find_element(By.ID, "maximumPerMinute").send_keys("20")
    screenshot(operator, "create-job")
    operator.find_element(By.CSS_SELECTOR, "form.create-job button[type=submit]").click()
    wait_for_text(operator, "#document-check", "Not a valid job document")
    assert operator.current_url.endswith("/console/jobs/new")
    document.send_keys('"reboot"}')
    wait_for_text(operator, "#document-check", "Valid JSON")
    operator.find_element(By.CSS_SELECTOR, "form.create-job button[type=submit]").click()
    wait_for_text(operator, "h1", f"{unique}-made")
    job = iot.describe_job(jobId=f"{unique}-made")["job"]
    assert job["jobExecutionsRolloutConfig"] == {"maximumPerMinute": 20}
    assert json.loads(iot.get_job_document(jobId=f"{unique}-made")["document"]) == {"operation": "reboot"}
