import json
from dataclasses import replace

import botocore.session
import pytest
from hypothesis import given
from hypothesis import strategies as st

from iot_jobs_bridge.jobs_service import managed_templates as mt
from iot_jobs_bridge.jobs_service.errors import InvalidRequest, ResourceNotFound

REGION = "us-east-1"
SHIPPED = {
    "AWS-Download-File",
    "AWS-Install-Application",
    "AWS-Reboot",
    "AWS-Remove-Application",
    "AWS-Restart-Application",
    "AWS-Run-Command",
    "AWS-Start-Application",
    "AWS-Stop-Application",
}
TEMPLATES = mt.catalog()
PARAMETERS = [(t, p) for t in TEMPLATES for p in t.parameters]


def ids(value):
    if isinstance(value, mt.ManagedTemplate):
        return value.label
    if isinstance(value, mt.TemplateParameter):
        return value.key
    return None


def download_file():
    return mt.find("AWS-Download-File", "1.0")


def examples(template, *, optional=True):
    return {p.key: p.example for p in template.parameters if optional or not p.optional}


# -- the catalog ---------------------------------------------------------------


def test_catalog_ships_the_documented_templates_once_each():
    assert {t.name for t in TEMPLATES} == SHIPPED
    assert len(TEMPLATES) == len(SHIPPED)
    assert all(t.version == "1.0" and t.environments == ("LINUX",) for t in TEMPLATES)
    assert list(TEMPLATES) == sorted(TEMPLATES, key=lambda t: t.name)


def test_catalog_is_read_once():
    assert mt.catalog() is mt.catalog()


@pytest.mark.parametrize("template", TEMPLATES, ids=ids)
def test_document_is_a_device_client_job_document(template):
    document = json.loads(template.document)
    assert document["version"] == "1.0"
    (step,) = document["steps"]
    assert step["action"]["type"] in {"runHandler", "runCommand"}
    assert step["action"]["runAsUser"] == "${aws:iot:parameter:runAsUser}"
    assert len(template.document) <= 32768


@pytest.mark.parametrize("template", TEMPLATES, ids=ids)
def test_placeholders_and_parameters_agree(template):
    used = mt.placeholders(template.document)
    assert set(used) == {p.key for p in template.parameters}
    assert template.document.count(mt.PLACEHOLDER_PREFIX) == len(used)


@pytest.mark.parametrize(("template", "parameter"), PARAMETERS, ids=ids)
def test_parameter_regex_compiles_and_matches_its_example(template, parameter):
    assert parameter.example is not None
    assert parameter.accepts(parameter.example)


@pytest.mark.parametrize("template", TEMPLATES, ids=ids)
def test_common_optional_parameters(template):
    optional = {p.key: p for p in template.parameters if p.optional}
    expected = {"runAsUser"} if template.name == "AWS-Run-Command" else {"runAsUser", "pathToHandler"}
    assert set(optional) == expected
    assert optional["runAsUser"].regex == "(.){0,256}"


def test_download_file_matches_the_documented_describe_output():
    # The DescribeManagedJobTemplate example in the developer guide, verbatim.
    assert mt.describe_payload(download_file(), REGION) == {
        "templateName": "AWS-Download-File",
        "templateArn": "arn:aws:iot:us-east-1::jobtemplate/AWS-Download-File:1.0",
        "description": "A managed job template for downloading a file.",
        "templateVersion": "1.0",
        "environments": ["LINUX"],
        "documentParameters": [
            {
                "key": "downloadUrl",
                "description": "URL of file to download.",
                "regex": "(.*?)",
                "example": "http://www.example.com/index.html",
                "optional": False,
            },
            {
                "key": "filePath",
                "description": "Path on the device where downloaded file is written.",
                "regex": "(.*?)",
                "example": "/path/to/file",
                "optional": False,
            },
            {
                "key": "runAsUser",
                "description": "Execute handler as another user. If not specified, then handler is "
                "executed as the same user as device client.",
                "regex": "(.){0,256}",
                "example": "user1",
                "optional": True,
            },
            {
                "key": "pathToHandler",
                "description": "Path to handler on the device. If not specified, then device client "
                "will use the current working directory.",
                "regex": "(.){0,4096}",
                "example": "/path/to/handler/script",
                "optional": True,
            },
        ],
        "document": '{"version":"1.0","steps":[{"action":{"name":"Download-File","type":"runHandler",'
        '"input":{"handler":"download-file.sh","args":["${aws:iot:parameter:downloadUrl}",'
        '"${aws:iot:parameter:filePath}"],"path":"${aws:iot:parameter:pathToHandler}"},'
        '"runAsUser":"${aws:iot:parameter:runAsUser}"}}]}',
    }


def test_reboot_matches_the_documented_list_item():
    assert mt.summary_payload(mt.find("AWS-Reboot"), REGION) == {
        "templateArn": "arn:aws:iot:us-east-1::jobtemplate/AWS-Reboot:1.0",
        "templateName": "AWS-Reboot",
        "description": "A managed job template for rebooting the device.",
        "environments": ["LINUX"],
        "templateVersion": "1.0",
    }


def _members(operation, *path):
    shape = botocore.session.get_session().get_service_model("iot").operation_model(operation).output_shape
    for name in path:
        shape = shape.members[name]
        if shape.type_name == "list":
            shape = shape.member
    return set(shape.members)


@pytest.mark.parametrize("template", TEMPLATES, ids=ids)
def test_payloads_use_the_api_model_member_names(template):
    describe = mt.describe_payload(template, REGION)
    assert set(describe) == _members("DescribeManagedJobTemplate")
    for parameter in describe["documentParameters"]:
        assert set(parameter) == _members("DescribeManagedJobTemplate", "documentParameters")
    summary = mt.summary_payload(template, REGION)
    assert set(summary) == _members("ListManagedJobTemplates", "managedJobTemplates")


def test_describe_leaves_out_an_absent_example():
    bare = replace(mt.find("AWS-Reboot"), parameters=(mt.TemplateParameter("x", "d", ".*", None, True),))
    assert mt.describe_payload(bare, REGION)["documentParameters"] == [
        {"key": "x", "description": "d", "regex": ".*", "optional": True}
    ]


# -- ARNs and lookup ---------------------------------------------------------


@pytest.mark.parametrize("template", TEMPLATES, ids=ids)
@pytest.mark.parametrize("region", ["us-east-1", "eu-central-1", "ap-southeast-2"])
def test_arn_round_trips(template, region):
    arn = template.arn(region)
    assert arn == f"arn:aws:iot:{region}::jobtemplate/{template.name}:1.0"
    region_, name, version = mt.parse_arn(arn)
    assert region_ == region
    assert mt.find(name, version) is template


@pytest.mark.parametrize(
    "arn",
    [
        "arn:aws:iot:us-east-1:123456789012:jobtemplate/my-template",  # custom template
        "arn:aws:iot:us-east-1:123456789012:jobtemplate/AWS-Reboot:1.0",  # has an account
        "arn:aws:iot:us-east-1::jobtemplate/AWS-Reboot",  # no version
        "arn:aws:iot:us-east-1::jobtemplate/AWS-Reboot:1.0/extra",
        "arn:aws:iot:us-east-1::jobtemplate/AWS-Reboot:latest",
        "arn:aws:iot:::jobtemplate/AWS-Reboot:1.0",  # no region
        "arn:aws:iot:us-east-1::job/AWS-Reboot:1.0",
        "arn:aws:s3:us-east-1::jobtemplate/AWS-Reboot:1.0",
        "AWS-Reboot:1.0",
    ],
)
def test_other_arns_are_not_managed_template_arns(arn):
    assert mt.parse_arn(arn) is None


def test_an_unknown_name_parses_and_find_reports_it():
    parsed = mt.parse_arn("arn:aws:iot:us-east-1::jobtemplate/AWS-Nope:1.0")
    assert parsed == ("us-east-1", "AWS-Nope", "1.0")
    with pytest.raises(ResourceNotFound) as info:
        mt.find(*parsed[1:])
    assert info.value.message == "Managed job template AWS-Nope:1.0 does not exist"
    assert info.value.http_status == 404


def test_find_without_version_takes_the_latest():
    base = mt.find("AWS-Reboot")
    versions = [replace(base, version=v) for v in ("1.9", "2.0", "1.0", "1.10")]
    assert mt.find("AWS-Reboot", templates=versions).version == "2.0"
    assert mt.find("AWS-Reboot", templates=versions[:1] + versions[3:]).version == "1.10"  # not 1.9
    assert mt.find("AWS-Reboot", "1.9", templates=versions) is versions[0]
    assert mt.find("AWS-Reboot").version == "1.0"


@pytest.mark.parametrize(
    ("name", "version", "message"),
    [
        ("AWS-Nope", None, "Managed job template AWS-Nope does not exist"),
        ("AWS-Reboot", "9.0", "Managed job template AWS-Reboot:9.0 does not exist"),
        ("aws-reboot", None, "Managed job template aws-reboot does not exist"),  # names are case-sensitive
    ],
)
def test_find_names_what_does_not_exist(name, version, message):
    with pytest.raises(ResourceNotFound) as info:
        mt.find(name, version)
    assert info.value.message == message


# -- substitution ----------------------------------------------------------------


def test_substitute_fills_given_values_and_empties_absent_optionals():
    template = download_file()
    result = mt.substitute(
        template.document, {"downloadUrl": "https://example.com/a.bin", "filePath": "/tmp/a.bin"}, template
    )
    assert json.loads(result) == {
        "version": "1.0",
        "steps": [
            {
                "action": {
                    "name": "Download-File",
                    "type": "runHandler",
                    "input": {
                        "handler": "download-file.sh",
                        "args": ["https://example.com/a.bin", "/tmp/a.bin"],
                        "path": "",
                    },
                    "runAsUser": "",
                }
            }
        ],
    }


def test_substitute_fills_optionals_when_given():
    template = download_file()
    values = {"downloadUrl": "u", "filePath": "f", "runAsUser": "pi", "pathToHandler": "/opt/handlers"}
    action = json.loads(mt.substitute(template.document, values, template))["steps"][0]["action"]
    assert (action["runAsUser"], action["input"]["path"]) == ("pi", "/opt/handlers")


@pytest.mark.parametrize("template", TEMPLATES, ids=ids)
@pytest.mark.parametrize("optional", [True, False], ids=["all", "required-only"])
def test_every_template_substitutes_to_json_without_placeholders(template, optional):
    result = mt.substitute(template.document, examples(template, optional=optional), template)
    json.loads(result)
    assert mt.PLACEHOLDER_PREFIX not in result


def test_values_are_json_escaped():
    template = download_file()
    url = 'https://example.com/a "quoted" \\ path\t/\u00e9'
    result = mt.substitute(template.document, {"downloadUrl": url, "filePath": "C:\\tmp\\x"}, template)
    assert json.loads(result)["steps"][0]["action"]["input"]["args"] == [url, "C:\\tmp\\x"]


def test_escaped_commas_in_a_command_reach_the_device_unchanged():
    template = mt.find("AWS-Run-Command")
    result = mt.substitute(template.document, {"command": "echo,a\\,b"}, template)
    assert json.loads(result)["steps"][0]["action"]["input"]["command"] == "echo,a\\,b"


def test_a_presigned_url_placeholder_in_a_value_is_kept_for_the_signer():
    template = download_file()
    url = "${aws:iot:s3-presigned-url:https://s3.amazonaws.com/bucket/key}"
    result = mt.substitute(template.document, {"downloadUrl": url, "filePath": "/tmp/f"}, template)
    assert f'"{url}"' in result


# A value the template's "(.*?)" accepts: no line terminator (nor VT or FF, see
# docs/managed-templates.md) and no parameter placeholder.
line_text = st.text(st.characters(blacklist_characters="\n\x0b\x0c\r\x85\u2028\u2029")).filter(
    lambda s: mt.PLACEHOLDER_PREFIX not in s
)


@given(url=line_text, path=line_text)
def test_any_accepted_value_round_trips_through_the_document(url, path):
    template = download_file()
    result = mt.substitute(template.document, {"downloadUrl": url, "filePath": path}, template)
    assert mt.PLACEHOLDER_PREFIX not in result
    assert json.loads(result)["steps"][0]["action"]["input"]["args"] == [url, path]


def test_the_original_document_is_not_changed():
    template = download_file()
    before = template.document
    mt.substitute(template.document, {"downloadUrl": "u", "filePath": "f"}, template)
    assert template.document == before


# -- substitution errors -------------------------------------------------------


def reject(template, values):
    with pytest.raises(InvalidRequest) as info:
        mt.substitute(template.document, values, template)
    assert type(info.value) is InvalidRequest
    assert info.value.http_status == 400
    return info.value.message


def test_missing_required_parameters_are_named_in_template_order():
    assert reject(download_file(), {"runAsUser": "pi"}) == (
        "Managed job template AWS-Download-File:1.0 requires documentParameters: downloadUrl, filePath"
    )
    assert reject(download_file(), {"filePath": "f"}) == (
        "Managed job template AWS-Download-File:1.0 requires documentParameters: downloadUrl"
    )


def test_undeclared_keys_are_named_before_missing_ones():
    # A misspelt key is reported as such rather than as a missing parameter.
    assert reject(download_file(), {"downloadURL": "u", "filePath": "f", "extra": "x"}) == (
        "Managed job template AWS-Download-File:1.0 does not declare documentParameters: downloadURL, extra"
    )


def test_reboot_takes_no_required_parameters_but_refuses_unknown_ones():
    template = mt.find("AWS-Reboot")
    assert json.loads(mt.substitute(template.document, {}, template))
    assert reject(template, {"packages": "vim"}) == (
        "Managed job template AWS-Reboot:1.0 does not declare documentParameters: packages"
    )


def test_run_command_has_no_path_to_handler():
    assert reject(mt.find("AWS-Run-Command"), {"command": "ls", "pathToHandler": "/opt"}) == (
        "Managed job template AWS-Run-Command:1.0 does not declare documentParameters: pathToHandler"
    )


@pytest.mark.parametrize(
    ("values", "message"),
    [
        (
            {"runAsUser": "u" * 257},
            "documentParameters value for runAsUser does not match the pattern (.){0,256} "
            "of managed job template AWS-Download-File:1.0",
        ),
        (
            {"pathToHandler": "p" * 4097},
            "documentParameters value for pathToHandler does not match the pattern (.){0,4096} "
            "of managed job template AWS-Download-File:1.0",
        ),
        (
            {"downloadUrl": "https://example.com/\nx"},
            "documentParameters value for downloadUrl does not match the pattern (.*?) "
            "of managed job template AWS-Download-File:1.0",
        ),
    ],
)
def test_values_must_match_their_pattern(values, message):
    assert reject(download_file(), {"downloadUrl": "u", "filePath": "f", **values}) == message


def test_longest_allowed_values_pass():
    template = download_file()
    values = {"downloadUrl": "u", "filePath": "f", "runAsUser": "u" * 256, "pathToHandler": "p" * 4096}
    json.loads(mt.substitute(template.document, values, template))


@pytest.mark.parametrize("terminator", ["\n", "\r", "\x85", "\u2028", "\u2029"])
def test_dot_stops_at_every_java_line_terminator(terminator):
    # Java's `.` does not match any line terminator; plain Python `.` stops only at \n.
    template = download_file()
    message = reject(template, {"downloadUrl": "u", "filePath": f"/tmp/a{terminator}b"})
    assert message.startswith("documentParameters value for filePath does not match")


def test_a_value_may_not_smuggle_a_parameter_placeholder():
    assert reject(download_file(), {"downloadUrl": "${aws:iot:parameter:filePath}", "filePath": "f"}) == (
        "documentParameters value for downloadUrl contains ${aws:iot:parameter:"
    )


def test_error_text_carries_the_code():
    template = download_file()
    with pytest.raises(InvalidRequest, match=r"^\[InvalidRequest\] Managed job template"):
        mt.substitute(template.document, {}, template)


def test_a_foreign_placeholder_in_the_document_is_a_caller_error():
    template = mt.find("AWS-Reboot")
    message = r"^Document placeholder packages is not declared by AWS-Reboot:1\.0$"
    with pytest.raises(ValueError, match=message):
        mt.substitute('{"a":"${aws:iot:parameter:packages}"}', {}, template)


# -- loading template files ----------------------------------------------------


def param(**changes):
    base = {"key": "target", "description": "Where.", "regex": "[a-z]+", "example": "here", "optional": False}
    return {**base, **changes}


def write(directory, name, **changes):
    data = {
        "templateName": "Test-Template",
        "templateVersion": "1.0",
        "description": "A template for tests.",
        "environments": ["LINUX"],
        "documentParameters": [param()],
        "document": {"steps": [{"args": ["${aws:iot:parameter:target}"]}]},
        **changes,
    }
    (directory / name).write_text(json.dumps(data), encoding="utf-8")


def test_load_reads_json_files_only(tmp_path):
    write(tmp_path, "a.json")
    write(tmp_path, "b.json", templateVersion="1.1")
    (tmp_path / "README.txt").write_text("not a template", encoding="utf-8")
    loaded = mt.load_templates(tmp_path)
    assert [t.label for t in loaded] == ["Test-Template:1.0", "Test-Template:1.1"]
    assert loaded[0].document == '{"steps":[{"args":["${aws:iot:parameter:target}"]}]}'


@pytest.mark.parametrize(
    ("changes", "error"),
    [
        ({"documentParameters": []}, r"placeholders \['target'\] and documentParameters \[\] do not agree"),
        (
            {"documentParameters": [param(), param(key="other")]},
            r"placeholders \['target'\] and documentParameters \['other', 'target'\] do not agree",
        ),
        ({"documentParameters": [param(), param()]}, "documentParameters repeat a key"),
        ({"documentParameters": [param(example="HERE")]}, "example 'HERE' does not match"),
        ({"documentParameters": [param(regex="[a-z")]}, r"regex \[a-z does not compile"),
        ({"documentParameters": [param(optional="no")]}, "optional a boolean"),
        ({"document": {"a": "${aws:iot:parameter:}"}}, "malformed"),
        ({"document": "{}"}, "document must be a JSON object"),
        ({"templateVersion": "latest"}, "templateVersion 'latest' is not of the form N.N"),
        ({"templateName": "bad name"}, "templateName 'bad name' is not"),
        ({"extra": 1}, "exactly the keys"),
    ],
)
def test_load_refuses_inconsistent_templates(tmp_path, changes, error):
    write(tmp_path, "bad.json", **changes)
    with pytest.raises(ValueError, match=r"^Managed job template file bad\.json: .*" + error):
        mt.load_templates(tmp_path)


def test_load_refuses_a_template_defined_twice(tmp_path):
    write(tmp_path, "a.json")
    write(tmp_path, "b.json")
    message = r"^Managed job template file b\.json: Test-Template:1\.0 is defined twice$"
    with pytest.raises(ValueError, match=message):
        mt.load_templates(tmp_path)
