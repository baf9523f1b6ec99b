"""``iotjobs simulate`` against the real server: a mixed fleet ends exactly as its profiles say."""

import json
import os
import subprocess
import sys

import pytest

from ..conftest import ACCESS_KEY_ID, SECRET, start_server

pytestmark = pytest.mark.integration

MIX = "succeed=40,fail=10,reject=10,timeout=10,slow=5,offline=5,disconnect=10,reboot=5,stale=5"


@pytest.fixture(scope="module")
def fast_server(tmp_path_factory):
    # At time scale 6 the one-minute in-progress timeout of "timeout" devices lasts 10 s: long
    # enough for every other profile to finish on a busy 2-core machine.
    server = start_server(tmp_path_factory.mktemp("sim-data"), extra_env={"IOTJOBS_TIME_SCALE": "6"})
    yield server
    assert server.stop() == 0


def simulate(server, *args, credentials=True, cwd=None):
    env = {k: v for k, v in os.environ.items() if not k.startswith("IOTJOBS_")}
    if credentials:
        env.update(IOTJOBS_ACCESS_KEY_ID=ACCESS_KEY_ID, IOTJOBS_SECRET_ACCESS_KEY=SECRET)
    command = [sys.executable, "-m", "iot_jobs_bridge.jobs_service.cli", "simulate"]
    command += ["--mqtt", f"mqtt://{server.mqtt_host}:{server.mqtt_port}", "--http", server.http_url, *args]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=110, cwd=cwd)


def test_two_hundred_devices_with_mixed_profiles_end_as_their_profiles_predict(fast_server):
    result = simulate(
        fast_server,
        *("--things", "200", "--profile", MIX, "--workers", "2", "--prefix", "mix"),
        *("--offline-for", "0.5", "--slow-median", "0.3", "--deadline", "90", "--json"),
    )
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads(result.stdout)
    assert report["things"] == 200
    assert report["lost"] == 0 and report["duplicated"] == 0 and report["mismatched"] == 0
    assert (
        report["statuses"]
        == report["expected_statuses"]
        == {
            "SUCCEEDED": 140,
            "FAILED": 20,
            "REJECTED": 20,
            "TIMED_OUT": 20,
        }
    )
    assert report["profiles"]["reboot"] == 10
    assert report["executions_per_second"] > 0 and report["seconds"] > 0
    # Its own CPU over the run, all its processes: at least what the workers took to start.
    assert report["cpu_seconds"] > 0.1
    assert report["cpu_per_execution_ms"] == pytest.approx(1000 * report["cpu_seconds"] / 200, rel=0.01)
    assert report["notify_to_start"]["count"] == 200
    assert report["notify_to_start"]["p50"] <= report["notify_to_start"]["p99"]
    assert report["ok"] is True


def test_things_are_reused_and_the_text_report_names_the_result(fast_server):
    for _ in range(2):  # the second run finds its things and group already registered
        result = simulate(fast_server, "--things", "5", "--prefix", "again", "--group", "again-fleet")
        assert result.returncode == 0, result.stdout + result.stderr
        assert "every thing ended as its profile predicts" in result.stdout
        assert "statuses          SUCCEEDED 5" in result.stdout


def test_a_profile_mix_that_is_not_100_percent_is_refused(fast_server):
    result = simulate(fast_server, "--things", "5", "--profile", "succeed=50,fail=20")
    assert result.returncode == 2
    assert "profile shares add up to 70%, not 100%" in result.stderr


def test_missing_admin_credentials_are_refused(fast_server, tmp_path):
    result = simulate(fast_server, "--things", "5", "--data-dir", str(tmp_path), credentials=False)
    assert result.returncode == 2
    assert "set IOTJOBS_ACCESS_KEY_ID and IOTJOBS_SECRET_ACCESS_KEY" in result.stderr
    assert f"({tmp_path}/admin-credentials.json does not exist)" in result.stderr


def test_without_the_environment_the_key_comes_from_the_data_dir(fast_server, tmp_path):
    (tmp_path / "data").mkdir()
    stored = {"accessKeyId": ACCESS_KEY_ID, "secretAccessKey": SECRET}
    (tmp_path / "data" / "admin-credentials.json").write_text(json.dumps(stored))
    # ./data by default, as the server's own default.
    result = simulate(fast_server, "--things", "3", "--prefix", "keyfile", credentials=False, cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "statuses          SUCCEEDED 3" in result.stdout


@pytest.mark.parametrize("form", ["inline", "@file", "file://", "path"])
def test_the_document_is_inline_json_or_a_file(fast_server, tmp_path, form):
    document = {"operation": "simulate", "form": form}
    path = tmp_path / "document.json"
    path.write_text(json.dumps(document))
    given = {
        "inline": json.dumps(document),
        "@file": f"@{path}",
        "file://": f"file://{path}",
        "path": str(path),
    }
    prefix = "doc-" + "".join(c for c in form if c.isalpha())
    result = simulate(fast_server, "--things", "2", "--prefix", prefix, "--document", given[form], "--json")
    assert result.returncode == 0, result.stdout + result.stderr
    job_id = json.loads(result.stdout)["job_id"]
    assert json.loads(fast_server.iot().get_job_document(jobId=job_id)["document"]) == document


def test_a_document_that_is_not_json_is_refused(fast_server):
    result = simulate(fast_server, "--things", "2", "--document", "{not json")
    assert result.returncode == 2
    assert "iotjobs simulate: --document '{not json' is not JSON" in result.stderr
