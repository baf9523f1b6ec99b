"""``--document`` and ``--settings`` of every command: inline JSON, @FILE, file://FILE or a file's path."""

import json

import pytest

from iot_jobs_bridge.jobs_service.json_argument import json_argument

DOCUMENT = '{"operation": "reboot", "args": ["now"]}'


@pytest.fixture
def document_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "doc.json").write_text(DOCUMENT, encoding="utf-8")
    return tmp_path / "doc.json"


def test_inline_json_is_returned_as_written():
    spaced = '{ "operation" :  "reboot" }'
    assert json_argument(spaced, "--document") == spaced


@pytest.mark.parametrize(
    "form", ["@doc.json", "file://doc.json", "doc.json", "@{path}", "file://{path}", "{path}"]
)
def test_a_file_is_read_by_each_of_its_names(document_file, form):
    assert json_argument(form.format(path=document_file), "--document") == DOCUMENT


def test_file_urls_with_three_slashes_are_absolute(document_file):
    assert str(document_file).startswith("/")
    assert json_argument(f"file://{document_file}", "--document") == DOCUMENT


def test_a_missing_file_is_named():
    with pytest.raises(ValueError, match=r"^--document: cannot read /no/such/doc\.json: No such file"):
        json_argument("@/no/such/doc.json", "--document")


def test_a_file_that_is_not_json_is_named(tmp_path):
    (tmp_path / "bad.json").write_text("{oops", encoding="utf-8")
    with pytest.raises(ValueError, match=rf"^--settings file {tmp_path}/bad\.json is not JSON \(Expecting"):
        json_argument(f"file://{tmp_path}/bad.json", "--settings")


def test_neither_json_nor_a_file_says_which_forms_are_taken(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ValueError) as raised:
        json_argument("doc.json", "--document")
    assert str(raised.value).startswith("--document 'doc.json' is not JSON (")
    assert str(raised.value).endswith("give inline JSON, @FILE, file://FILE or the path of a file")


def test_inline_json_longer_than_a_file_name_is_still_json():
    document = json.dumps({"operation": "x" * 5000})
    assert json_argument(document, "--document") == document
    with pytest.raises(ValueError, match=r"^--document '\{\"operation\": \"xxx.*\.\.\.' is not JSON"):
        json_argument(document[:-1], "--document")


def test_a_long_word_that_cannot_be_a_file_name_is_reported_as_not_json():
    with pytest.raises(ValueError, match="is not JSON"):
        json_argument("y" * 5000, "--document")
