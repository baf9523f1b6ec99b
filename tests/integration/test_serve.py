"""The fixed contract of ``iotjobs serve``: ready line, credentials, clean stop."""

import json
import os
import stat

from tests.stores import BACKEND

from .conftest import start_server


def test_generated_credentials_are_stored_and_never_printed(tmp_path):
    server = start_server(tmp_path / "data", env_credentials=False)
    try:
        stored_path = tmp_path / "data" / "admin-credentials.json"
        stored = json.loads(stored_path.read_text())
        assert stat.S_IMODE(os.stat(stored_path).st_mode) == 0o600
        output = "\n".join(server.lines)
        assert f"stored in {stored_path}" in output
        assert stored["secretAccessKey"] not in output
        iot = server.iot(key_id=stored["accessKeyId"], secret=stored["secretAccessKey"])
        assert iot.create_thing(thingName="first")["thingName"] == "first"
        iot.create_job(
            jobId="kept", document="{}", targets=["arn:aws:iot:us-east-1:123456789012:thing/first"]
        )
    finally:
        assert server.stop() == 0

    # A second start reuses the stored key, things and jobs.
    again = start_server(tmp_path / "data", env_credentials=False)
    try:
        assert not any("generated and stored" in line for line in again.lines)
        iot = again.iot(key_id=stored["accessKeyId"], secret=stored["secretAccessKey"])
        assert iot.describe_thing(thingName="first")["thingName"] == "first"
        job = iot.describe_job(jobId="kept")["job"]
        assert (job["status"], job["jobProcessDetails"]["numberOfQueuedThings"]) == ("IN_PROGRESS", 1)
    finally:
        assert again.stop() == 0
    assert "iotjobs stopping" in again.lines


def test_ready_line_names_both_listeners(server):
    ready = [line for line in server.lines if line.startswith("iotjobs ready ")]
    assert ready == [f"iotjobs ready mqtt={server.mqtt_host}:{server.mqtt_port} http={server.http_url[7:]}"]
    assert server.mqtt_host == "127.0.0.1"
    # The store is where it was asked to be: the SQLite file, or none with --store postgresql://.
    assert (server.data_dir / "jobs.sqlite3").exists() == (BACKEND == "sqlite")


def test_a_fresh_data_dir_and_every_file_in_it_are_the_owners_alone(tmp_path):
    data_dir = tmp_path / "fresh" / "data"
    # --mqtts-port writes the CA and the server certificate too; no key in the environment
    # makes the service store one.
    server = start_server(data_dir, env_credentials=False, extra_args=["--mqtts-port", "0"])
    try:
        stored = json.loads((data_dir / "admin-credentials.json").read_text())
        iot = server.iot(key_id=stored["accessKeyId"], secret=stored["secretAccessKey"])
        arn = iot.create_thing(thingName="private")["thingArn"]
        iot.create_job(jobId="private-job", document='{"secret": "plans"}', targets=[arn])
        modes = {
            str(path.relative_to(data_dir)): stat.S_IMODE(path.stat().st_mode)
            for path in [data_dir, *data_dir.rglob("*")]
        }
    finally:
        assert server.stop() == 0
    database = {"jobs.sqlite3", "jobs.sqlite3-wal", "jobs.sqlite3-shm"} if BACKEND == "sqlite" else set()
    assert {*database, "ca.pem", "admin-credentials.json"} <= set(modes)
    assert modes.pop(".") == 0o700
    assert {name: oct(mode) for name, mode in modes.items() if mode != 0o600} == {}


def test_an_existing_data_dir_open_to_others_is_reported(tmp_path):
    data_dir = tmp_path / "shared"
    data_dir.mkdir()
    data_dir.chmod(0o755)
    server = start_server(data_dir)
    try:
        warnings = [line for line in server.lines if "WARNING" in line and "data dir" in line]
    finally:
        assert server.stop() == 0
    assert len(warnings) == 1
    assert f"the data dir {data_dir} can be read by other users (mode 755)" in warnings[0]
    assert "chmod 700" in warnings[0]
