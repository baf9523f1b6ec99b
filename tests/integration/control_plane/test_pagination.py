"""Every List* operation over several pages: complete, exact and free of duplicates."""

import uuid

import pytest

from ._support import create_things, fails_with, finish, group_arn, thing_arn


def _pages(iot, operation, key, page_size=2, **params):
    """Every page of a boto3 paginator (two items a page unless told), as lists of items."""
    config = {"PageSize": page_size}
    pages = list(iot.get_paginator(operation).paginate(**params, PaginationConfig=config))
    assert all(len(page[key]) <= page_size for page in pages)
    assert all("nextToken" in page for page in pages[:-1])
    assert "nextToken" not in pages[-1]
    return [page[key] for page in pages]


def _flat(pages):
    return [item for page in pages for item in page]


def _exactly(items, expected):
    """The same items as ``expected``, each once; the order is not part of the contract."""
    assert len(items) == len(set(items)), items
    assert sorted(items) == sorted(expected)


def test_list_things(iot, unique):
    names = [f"{unique}-{i}" for i in range(5)]
    for name in names:
        iot.create_thing(thingName=name, attributePayload={"attributes": {"batch": unique}})
    pages = _pages(iot, "list_things", "things", attributeName="batch", attributeValue=unique)
    assert [len(page) for page in pages] == [2, 2, 1]
    _exactly([thing["thingName"] for thing in _flat(pages)], names)

    # Unfiltered, over every thing on the server: each once.
    everything = [thing["thingName"] for thing in _flat(_pages(iot, "list_things", "things", page_size=50))]
    _exactly(everything, set(everything))
    _exactly([name for name in everything if name.startswith(unique)], names)


def test_list_thing_groups(iot, unique):
    iot.create_thing_group(thingGroupName=f"{unique}-root")
    children = [f"{unique}-root-{i}" for i in range(5)]
    for name in children:
        iot.create_thing_group(thingGroupName=name, parentGroupName=f"{unique}-root")
    iot.create_thing_group(thingGroupName=f"{unique}-root-0-x", parentGroupName=f"{unique}-root-0")

    pages = _pages(iot, "list_thing_groups", "thingGroups", namePrefixFilter=unique)
    assert [len(page) for page in pages] == [2, 2, 2, 1]
    assert [group["groupName"] for group in _flat(pages)] == sorted(
        [f"{unique}-root", *children, f"{unique}-root-0-x"]
    )

    pages = _pages(iot, "list_thing_groups", "thingGroups", parentGroup=f"{unique}-root")
    assert [group["groupName"] for group in _flat(pages)] == children
    pages = _pages(iot, "list_thing_groups", "thingGroups", parentGroup=f"{unique}-root", recursive=True)
    assert [group["groupName"] for group in _flat(pages)] == sorted([*children, f"{unique}-root-0-x"])

    everything = [
        group["groupName"] for group in _flat(_pages(iot, "list_thing_groups", "thingGroups", page_size=50))
    ]
    assert everything == sorted(set(everything))


def test_list_things_in_thing_group(iot, unique):
    iot.create_thing_group(thingGroupName=f"{unique}-g")
    iot.create_thing_group(thingGroupName=f"{unique}-sub", parentGroupName=f"{unique}-g")
    direct = [f"{unique}-{i}" for i in range(5)]
    nested = [f"{unique}-n{i}" for i in range(2)]
    create_things(iot, *direct, *nested)
    for name in direct:
        iot.add_thing_to_thing_group(thingGroupName=f"{unique}-g", thingName=name)
    for name in nested:
        iot.add_thing_to_thing_group(thingGroupName=f"{unique}-sub", thingName=name)

    pages = _pages(iot, "list_things_in_thing_group", "things", thingGroupName=f"{unique}-g")
    assert [len(page) for page in pages] == [2, 2, 1]
    _exactly(_flat(pages), direct)
    pages = _pages(iot, "list_things_in_thing_group", "things", thingGroupName=f"{unique}-g", recursive=True)
    _exactly(_flat(pages), direct + nested)


def test_list_thing_groups_for_thing(iot, unique):
    create_things(iot, f"{unique}-t")
    groups = [f"{unique}-g{i}" for i in range(5)]
    for name in groups:
        iot.create_thing_group(thingGroupName=name)
        iot.add_thing_to_thing_group(thingGroupName=name, thingName=f"{unique}-t")
    pages = _pages(iot, "list_thing_groups_for_thing", "thingGroups", thingName=f"{unique}-t")
    assert [len(page) for page in pages] == [2, 2, 1]
    found = _flat(pages)
    _exactly([group["groupName"] for group in found], groups)
    assert all(group["groupArn"] == group_arn(group["groupName"]) for group in found)


def test_list_jobs(iot, unique):
    [target] = create_things(iot, f"{unique}-t")
    iot.create_thing_group(thingGroupName=f"{unique}-g")
    job_ids = [f"{unique}-j{i}" for i in range(5)]
    for job_id in job_ids:
        iot.create_job(jobId=job_id, document="{}", targets=[target, group_arn(f"{unique}-g")])
    pages = _pages(iot, "list_jobs", "jobs", thingGroupName=f"{unique}-g")
    assert [len(page) for page in pages] == [2, 2, 1]
    assert [job["jobId"] for job in _flat(pages)] == job_ids[::-1]

    everything = [job["jobId"] for job in _flat(_pages(iot, "list_jobs", "jobs", page_size=50))]
    assert len(everything) == len(set(everything))
    assert [job_id for job_id in everything if job_id.startswith(unique)] == job_ids[::-1]


def test_list_job_executions_for_job(server, iot, unique):
    names = [f"{unique}-{i}" for i in range(5)]
    iot.create_job(jobId=f"{unique}-j", document="{}", targets=create_things(iot, *names))
    pages = _pages(iot, "list_job_executions_for_job", "executionSummaries", jobId=f"{unique}-j")
    assert [len(page) for page in pages] == [2, 2, 1]
    arns = [item["thingArn"] for item in _flat(pages)]
    assert sorted(arns) == [thing_arn(name) for name in names]
    assert len(set(arns)) == 5

    finish(server, names[1], f"{unique}-j", "SUCCEEDED")
    pages = _pages(
        iot, "list_job_executions_for_job", "executionSummaries", jobId=f"{unique}-j", status="QUEUED"
    )
    assert sorted(item["thingArn"] for item in _flat(pages)) == [thing_arn(n) for n in names if n != names[1]]


def test_list_job_executions_for_job_with_several_executions_per_thing(iot, unique):
    iot.create_thing_group(thingGroupName=f"{unique}-g")
    names = [f"{unique}-{i}" for i in range(2)]
    create_things(iot, *names)
    iot.create_job(
        jobId=f"{unique}-j", document="{}", targets=[group_arn(f"{unique}-g")], targetSelection="CONTINUOUS"
    )
    for _ in range(2):  # join, leave (REMOVED), join again: executions 1 and 2 on each thing
        for name in names:
            iot.add_thing_to_thing_group(thingGroupName=f"{unique}-g", thingName=name)
            iot.remove_thing_from_thing_group(thingGroupName=f"{unique}-g", thingName=name)
    for name in names:
        iot.add_thing_to_thing_group(thingGroupName=f"{unique}-g", thingName=name)
    pages = _pages(iot, "list_job_executions_for_job", "executionSummaries", jobId=f"{unique}-j")
    found = sorted(
        (
            item["thingArn"],
            item["jobExecutionSummary"]["executionNumber"],
            item["jobExecutionSummary"]["status"],
        )
        for item in _flat(pages)
    )
    assert found == [
        (thing_arn(name), number, "QUEUED" if number == 3 else "REMOVED")
        for name in names
        for number in (1, 2, 3)
    ]


def test_list_job_executions_for_thing(iot, unique):
    [target] = create_things(iot, f"{unique}-t")
    job_ids = [f"{unique}-j{i}" for i in range(5)]
    for job_id in job_ids:
        iot.create_job(jobId=job_id, document="{}", targets=[target])
    iot.cancel_job(jobId=job_ids[2])
    pages = _pages(iot, "list_job_executions_for_thing", "executionSummaries", thingName=f"{unique}-t")
    assert [len(page) for page in pages] == [2, 2, 1]
    listed = [item["jobId"] for item in _flat(pages)]
    assert sorted(listed) == job_ids
    assert len(set(listed)) == 5

    pages = _pages(
        iot, "list_job_executions_for_thing", "executionSummaries", thingName=f"{unique}-t", status="QUEUED"
    )
    assert sorted(item["jobId"] for item in _flat(pages)) == [j for j in job_ids if j != job_ids[2]]


def test_list_job_templates(iot, unique):
    template_ids = [f"{unique}-tpl{i}" for i in range(5)]
    for template_id in template_ids:
        iot.create_job_template(jobTemplateId=template_id, description="d", document="{}")
    pages = _pages(iot, "list_job_templates", "jobTemplates", page_size=3)
    assert len(pages) >= 2
    listed = [item["jobTemplateId"] for item in _flat(pages)]
    assert len(listed) == len(set(listed))
    assert sorted(t for t in listed if t.startswith(unique)) == template_ids
    single = iot.list_job_templates(maxResults=250)["jobTemplates"]
    assert sorted(item["jobTemplateId"] for item in single) == sorted(listed)


def test_list_managed_job_templates(iot):
    pages = list(iot.get_paginator("list_managed_job_templates").paginate(PaginationConfig={"PageSize": 3}))
    assert [len(page["managedJobTemplates"]) for page in pages] == [3, 3, 2]
    names = [t["templateName"] for page in pages for t in page["managedJobTemplates"]]
    assert names == [t["templateName"] for t in iot.list_managed_job_templates()["managedJobTemplates"]]
    assert len(names) == len(set(names)) == 8


@pytest.fixture(scope="module")
def fleet(server):
    """One small fleet for the parametrized tests below: things a-c in group g, jobs j and k."""
    iot = server.iot()
    u = f"p{uuid.uuid4().hex[:8]}"
    things = create_things(iot, f"{u}-a", f"{u}-b", f"{u}-c")
    iot.create_thing_group(thingGroupName=f"{u}-g")
    iot.add_thing_to_thing_group(thingGroupName=f"{u}-g", thingName=f"{u}-a")
    iot.create_job(jobId=f"{u}-j", document="{}", targets=things)
    iot.create_job(jobId=f"{u}-k", document="{}", targets=things)
    iot.create_job_template(jobTemplateId=f"{u}-tpl", description="d", document="{}")
    tokens = {
        "ListThings": iot.list_things(maxResults=1)["nextToken"],
        "ListJobs": iot.list_jobs(maxResults=1)["nextToken"],
        "ListJobExecutionsForJob": iot.list_job_executions_for_job(jobId=f"{u}-j", maxResults=1)["nextToken"],
        "ListManagedJobTemplates": iot.list_managed_job_templates(maxResults=1)["nextToken"],
        "nowhere": "%%%not-a-token%%%",
    }
    return u, tokens


LISTS = [
    ("list_jobs", {}, "jobs"),
    ("list_things", {}, "things"),
    ("list_thing_groups", {}, "thingGroups"),
    ("list_job_templates", {}, "jobTemplates"),
    ("list_managed_job_templates", {}, "managedJobTemplates"),
    ("list_job_executions_for_job", {"jobId": "{u}-j"}, "executionSummaries"),
    ("list_job_executions_for_thing", {"thingName": "{u}-a"}, "executionSummaries"),
    ("list_things_in_thing_group", {"thingGroupName": "{u}-g"}, "things"),
    ("list_thing_groups_for_thing", {"thingName": "{u}-a"}, "thingGroups"),
]


@pytest.mark.parametrize(("operation", "params", "key"), LISTS)
def test_max_results_over_250(iot, fleet, operation, params, key):
    u, _ = fleet
    call = getattr(iot, operation)
    resolved = {name: value.format(u=u) for name, value in params.items()}
    with fails_with(iot, "InvalidRequestException", 400, match="less than or equal to 250"):
        call(maxResults=251, **resolved)
    assert call(maxResults=250, **resolved)[key]


@pytest.mark.parametrize(("operation", "params", "key"), LISTS)
def test_a_foreign_or_garbled_next_token_is_a_client_error(iot, fleet, operation, params, key):
    """A nextToken from another List operation, or a mangled one, is never answered with a 5xx."""
    u, tokens = fleet
    call = getattr(iot, operation)
    resolved = {name: value.format(u=u) for name, value in params.items()}
    failures = []
    for origin, token in tokens.items():
        try:
            page = call(nextToken=token, **resolved)
        except iot.exceptions.InvalidRequestException as refused:
            assert refused.response["ResponseMetadata"]["HTTPStatusCode"] == 400
        except iot.exceptions.ClientError as other:
            error = other.response["Error"]
            status = other.response["ResponseMetadata"]["HTTPStatusCode"]
            failures.append(f"token from {origin}: {status} {error['Code']}: {error['Message']}")
        else:
            assert isinstance(page[key], list), (origin, page)
    assert not failures, "\n".join(failures)
