"""One credentials rule for the client commands: the environment, else the data dir's stored key."""

import json

import pytest

from iot_jobs_bridge.jobs_service.credentials import client_admin_key, load_admin_key

ENV = {"IOTJOBS_ACCESS_KEY_ID": "AKIAFROMENVIRONMENT1", "IOTJOBS_SECRET_ACCESS_KEY": "env-secret"}


def store_key(data_dir, key_id="AKIASTOREDINDATADIR1", secret="stored-secret"):
    data_dir.mkdir(exist_ok=True)
    path = data_dir / "admin-credentials.json"
    path.write_text(json.dumps({"accessKeyId": key_id, "secretAccessKey": secret}), encoding="utf-8")
    return path


def test_the_environment_wins_over_the_stored_key(tmp_path):
    store_key(tmp_path)
    key = client_admin_key(tmp_path, ENV)
    assert (key.access_key_id, key.secret_access_key, key.source) == (
        "AKIAFROMENVIRONMENT1",
        "env-secret",
        "environment",
    )


def test_without_the_environment_the_data_dirs_key_is_used(tmp_path):
    path = store_key(tmp_path)
    key = client_admin_key(tmp_path, {})
    assert (key.access_key_id, key.secret_access_key, key.source) == (
        "AKIASTOREDINDATADIR1",
        "stored-secret",
        str(path),
    )


def test_the_key_serve_generates_is_the_key_clients_read(tmp_path):
    made, generated = load_admin_key(tmp_path / "data", {})
    assert generated
    read = client_admin_key(tmp_path / "data", {})
    assert (read.access_key_id, read.secret_access_key) == (made.access_key_id, made.secret_access_key)


def test_no_key_names_the_full_path_looked_at(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ValueError) as raised:
        client_admin_key(type(tmp_path)("data"), {})
    assert str(raised.value) == (
        "no admin key: set IOTJOBS_ACCESS_KEY_ID and IOTJOBS_SECRET_ACCESS_KEY, or point --data-dir at "
        f"the server's data dir ({tmp_path}/data/admin-credentials.json does not exist)"
    )


def test_half_a_key_in_the_environment_is_refused(tmp_path):
    store_key(tmp_path)
    with pytest.raises(ValueError, match="Set both IOTJOBS_ACCESS_KEY_ID and IOTJOBS_SECRET_ACCESS_KEY"):
        client_admin_key(tmp_path, {"IOTJOBS_ACCESS_KEY_ID": "AKIAONLYHALFTHEKEY01"})


@pytest.mark.parametrize("content", ["{not json", '{"accessKeyId": "AKIA"}', "[]"])
def test_a_stored_file_that_is_no_key_is_named(tmp_path, content):
    (tmp_path / "admin-credentials.json").write_text(content, encoding="utf-8")
    with pytest.raises(ValueError) as raised:
        client_admin_key(tmp_path, {})
    assert str(raised.value) == (
        f"{tmp_path}/admin-credentials.json is not an admin key file: "
        "it needs accessKeyId and secretAccessKey"
    )


def test_an_unreadable_stored_file_is_named(tmp_path):
    (tmp_path / "admin-credentials.json").mkdir()  # a directory cannot be read as the key
    with pytest.raises(
        ValueError, match=rf"^cannot read the admin key in {tmp_path}/admin-credentials\.json: "
    ):
        client_admin_key(tmp_path, {})
