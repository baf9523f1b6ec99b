"""GetPendingJobExecutions: every IN_PROGRESS execution, at most 10 QUEUED ones, in queue order."""

from ._support import create_job, is_int

SUMMARY_FIELDS = {"jobId", "queuedAt", "startedAt", "lastUpdatedAt", "versionNumber", "executionNumber"}


def test_every_in_progress_and_at_most_ten_queued_each_in_queue_order(iot, device, unique):
    jobs = [create_job(iot, f"{unique}-j{i:02}", [device.thing]) for i in range(24)]
    # Twelve executions are started, newest first, so start order is not queue order.
    started = jobs[1::2]
    for job_id in reversed(started):
        device.accepted(f"{job_id}/update", {"status": "IN_PROGRESS"})

    body = device.marker()

    assert set(body) == {"inProgressJobs", "queuedJobs", "clientToken", "timestamp"}
    assert [s["jobId"] for s in body["inProgressJobs"]] == started
    assert [s["jobId"] for s in body["queuedJobs"]] == jobs[0::2][:10]
    for summary in body["inProgressJobs"] + body["queuedJobs"]:
        assert "status" not in summary
        assert set(summary) <= SUMMARY_FIELDS and all(is_int(summary[k]) for k in set(summary) - {"jobId"})
    for summary in body["inProgressJobs"]:
        assert (summary["versionNumber"], summary["executionNumber"]) == (2, 1)
        assert "startedAt" in summary
    for summary in body["queuedJobs"]:
        assert (summary["versionNumber"], summary["executionNumber"]) == (1, 1)
        assert "startedAt" not in summary
    for listed in (body["inProgressJobs"], body["queuedJobs"]):
        queued_at = [s["queuedAt"] for s in listed]
        assert queued_at == sorted(queued_at)


def test_both_lists_are_present_when_nothing_is_pending(iot, device, v2, unique):
    body = device.marker()
    assert (body["inProgressJobs"], body["queuedJobs"]) == ([], [])

    # Terminal executions are not pending.
    job_id = create_job(iot, f"{unique}-done", [device.thing, v2.thing])
    device.accepted(f"{job_id}/update", {"status": "SUCCEEDED"})
    body = device.marker()
    assert (body["inProgressJobs"], body["queuedJobs"]) == ([], [])

    v2.update(job_id, "REJECTED").result(10)
    pending = v2.get_pending()
    assert (pending.in_progress_jobs, pending.queued_jobs) == ([], [])


def test_the_sdk_reads_the_pending_lists(iot, v2, unique):
    first = create_job(iot, f"{unique}-a", [v2.thing])
    second = create_job(iot, f"{unique}-b", [v2.thing])
    v2.update(second, "IN_PROGRESS").result(10)

    pending = v2.get_pending()

    assert [s.job_id for s in pending.in_progress_jobs] == [second]
    assert [s.job_id for s in pending.queued_jobs] == [first]
    assert pending.in_progress_jobs[0].started_at is not None
    assert pending.queued_jobs[0].started_at is None
    assert pending.queued_jobs[0].version_number == 1
