"""Jobs, job executions and job templates on the control plane."""

from __future__ import annotations

from typing import Any

from .. import http_payloads as wire
from .. import managed_templates
from ..engine import NewJob
from ..engine.jobs import UPDATABLE_SETTINGS
from ..engine.rollout import schedule_of
from ..errors import InvalidRequest
from ..maintenance_windows import upcoming_starts
from ..models import Job, JobStatus, TargetSelection
from ..pagination import decode_token, encode_token, page_size
from ..templates import TEMPLATE_SETTINGS
from .base import Handler, HandlerBase, Params, page, status_filter

__all__ = ["JobHandlers"]

# CreateJob settings kept verbatim and returned by DescribeJob.
_JOB_SETTINGS = (*UPDATABLE_SETTINGS, "schedulingConfig", "destinationPackageVersions")


class JobHandlers(HandlerBase):
    def handlers(self) -> dict[str, Handler]:
        """This family's operations, by their names in the AWS API model."""
        return {
            "CreateJob": self.create_job,
            "DescribeJob": self.describe_job,
            "ListJobs": self.list_jobs,
            "UpdateJob": self.update_job,
            "CancelJob": self.cancel_job,
            "DeleteJob": self.delete_job,
            "GetJobDocument": self.get_job_document,
            "AssociateTargetsWithJob": self.associate_targets_with_job,
            "ListJobExecutionsForJob": self.list_job_executions_for_job,
            "ListJobExecutionsForThing": self.list_job_executions_for_thing,
            "DescribeJobExecution": self.describe_job_execution,
            "CancelJobExecution": self.cancel_job_execution,
            "DeleteJobExecution": self.delete_job_execution,
            "CreateJobTemplate": self.create_job_template,
            "DescribeJobTemplate": self.describe_job_template,
            "ListJobTemplates": self.list_job_templates,
            "DeleteJobTemplate": self.delete_job_template,
            "DescribeManagedJobTemplate": self.describe_managed_job_template,
            "ListManagedJobTemplates": self.list_managed_job_templates,
        }

    # -- jobs -------------------------------------------------------------
    def create_job(self, params: Params) -> dict[str, Any]:
        if params.get("documentSource") is not None:
            raise InvalidRequest("documentSource (a document in S3) is not supported by this server")
        resolved = self.templates.document_for_job(
            params.get("jobTemplateArn"), params.get("document"), params.get("documentParameters")
        )
        settings = {**resolved.settings, **{k: params[k] for k in _JOB_SETTINGS if params.get(k) is not None}}
        for key in ("jobTemplateArn", "documentParameters"):
            if params.get(key) is not None:
                settings[key] = params[key]
        job = self._sent(
            self.engine.jobs.create_job(
                NewJob(
                    job_id=params["jobId"],
                    targets=params["targets"],
                    document=resolved.document,
                    raw_document=resolved.raw_document,
                    description=params.get("description") or resolved.description,
                    target_selection=TargetSelection(params.get("targetSelection") or "SNAPSHOT"),
                    settings=settings,
                    namespace_id=params.get("namespaceId"),
                )
            )
        )
        return self._job_reference(job)

    def describe_job(self, params: Params) -> dict[str, Any]:
        job = self.engine.get_job(params["jobId"])
        counts = self.engine.store.jobs.execution_counts(job.job_id)
        _, _, windows = schedule_of(job.settings)
        rolling = job.status is JobStatus.IN_PROGRESS and self.engine.store.jobs.rollout_waits(job.job_id)
        starts = upcoming_starts(windows, self.engine.clock.now()) if windows else None
        return {"job": wire.job(job, self.arns, counts, rolling_out=rolling, window_starts=starts)}

    def list_jobs(self, params: Params) -> dict[str, Any]:
        group_name = params.get("thingGroupName")
        if params.get("thingGroupId") is not None:
            by_id = self.group_id_to_name(params["thingGroupId"])
            if group_name is not None and group_name != by_id:
                return {"jobs": []}
            group_name = by_id
        if group_name is not None:
            self.registry.get_group(group_name)
        position = decode_token(params.get("nextToken"), "ListJobs", float, str)
        jobs = self.engine.store.jobs.list_jobs(
            status=JobStatus(params["status"]) if params.get("status") else None,
            target_selection=TargetSelection(params["targetSelection"])
            if params.get("targetSelection")
            else None,
            target_arn=self.arns.thing_group(group_name) if group_name else None,
            namespace_id=params.get("namespaceId"),
            after=position,
            limit=page_size(params.get("maxResults")) + 1,
        )
        items, token = page("ListJobs", jobs, params, lambda job: [job.created_at, job.job_id])
        result: dict[str, Any] = {"jobs": [self._job_summary(job) for job in items]}
        if token:
            result["nextToken"] = token
        return result

    def update_job(self, params: Params) -> None:
        self.engine.jobs.update_job(
            params["jobId"],
            description=params.get("description"),
            settings={key: params[key] for key in UPDATABLE_SETTINGS if params.get(key) is not None},
        )

    def cancel_job(self, params: Params) -> dict[str, Any]:
        job = self._sent(
            self.engine.jobs.cancel_job(
                params["jobId"],
                force=bool(params.get("force")),
                reason_code=params.get("reasonCode"),
                comment=params.get("comment"),
            )
        )
        return self._job_reference(job)

    def delete_job(self, params: Params) -> None:
        self._sent(self.engine.jobs.delete_job(params["jobId"], force=bool(params.get("force"))))
        self._after_delete()

    def get_job_document(self, params: Params) -> dict[str, Any]:
        job = self.engine.get_job(params["jobId"])
        before = params.get("beforeSubstitution") and job.raw_document is not None
        return {"document": job.raw_document if before else job.document}

    def associate_targets_with_job(self, params: Params) -> dict[str, Any]:
        job = self._sent(self.engine.jobs.associate_targets(params["jobId"], params["targets"]))
        return self._job_reference(job)

    # -- executions -------------------------------------------------------
    def list_job_executions_for_job(self, params: Params) -> dict[str, Any]:
        job = self.engine.get_job(params["jobId"])
        rows = self.engine.store.jobs.executions_for_job(
            job.job_id,
            status=status_filter(params.get("status")),
            after=decode_token(params.get("nextToken"), "ListJobExecutionsForJob", str, int),
            limit=page_size(params.get("maxResults")) + 1,
        )
        items, token = page(
            "ListJobExecutionsForJob", rows, params, lambda row: [row.thing_name, row.execution_number]
        )
        result: dict[str, Any] = {
            "executionSummaries": [
                {
                    "thingArn": self.arns.thing(row.thing_name),
                    "jobExecutionSummary": wire.execution_summary(row),
                }
                for row in items
            ]
        }
        if token:
            result["nextToken"] = token
        return result

    def list_job_executions_for_thing(self, params: Params) -> dict[str, Any]:
        thing = self.registry.get_thing(params["thingName"])
        rows = self.engine.store.jobs.executions_for_thing(
            thing.name,
            status=status_filter(params.get("status")),
            job_id=params.get("jobId"),
            after=decode_token(params.get("nextToken"), "ListJobExecutionsForThing", int),
            limit=page_size(params.get("maxResults")) + 1,
        )
        items, token = page("ListJobExecutionsForThing", rows, params, lambda row: row.seq)
        result: dict[str, Any] = {
            "executionSummaries": [
                {"jobId": row.job_id, "jobExecutionSummary": wire.execution_summary(row)} for row in items
            ]
        }
        if token:
            result["nextToken"] = token
        return result

    def describe_job_execution(self, params: Params) -> dict[str, Any]:
        execution = self.engine.get_execution(
            params["jobId"], params["thingName"], params.get("executionNumber")
        )
        seconds_left = self.engine.lifecycle.seconds_before_timed_out(execution)
        return {"execution": wire.execution(execution, self.arns, seconds_left)}

    def cancel_job_execution(self, params: Params) -> None:
        self._sent(
            self.engine.jobs.cancel_execution(
                params["jobId"],
                params["thingName"],
                force=bool(params.get("force")),
                expected_version=params.get("expectedVersion"),
                status_details=params.get("statusDetails"),
            )
        )

    def delete_job_execution(self, params: Params) -> None:
        self._sent(
            self.engine.jobs.delete_execution(
                params["jobId"],
                params["thingName"],
                params["executionNumber"],
                force=bool(params.get("force")),
            )
        )

    # -- templates --------------------------------------------------------
    def create_job_template(self, params: Params) -> dict[str, Any]:
        settings = {
            k: params[k]
            for k in (*TEMPLATE_SETTINGS, "maintenanceWindows", "destinationPackageVersions")
            if params.get(k) is not None
        }
        template = self.templates.create(
            params["jobTemplateId"],
            description=params["description"],
            document=params.get("document"),
            document_source=params.get("documentSource"),
            job_arn=params.get("jobArn"),
            settings=settings,
        )
        return {
            "jobTemplateArn": self.arns.job_template(template.template_id),
            "jobTemplateId": template.template_id,
        }

    def describe_job_template(self, params: Params) -> dict[str, Any]:
        template = self.templates.get(params["jobTemplateId"])
        return wire.job_template(template, self.arns)

    def list_job_templates(self, params: Params) -> dict[str, Any]:
        rows = self.engine.store.templates.list_templates(
            after=decode_token(params.get("nextToken"), "ListJobTemplates", str),
            limit=page_size(params.get("maxResults")) + 1,
        )
        items, token = page("ListJobTemplates", rows, params, lambda template: template.template_id)
        result: dict[str, Any] = {
            "jobTemplates": [
                {
                    "jobTemplateArn": self.arns.job_template(t.template_id),
                    "jobTemplateId": t.template_id,
                    "description": t.description,
                    "createdAt": t.created_at,
                }
                for t in items
            ]
        }
        if token:
            result["nextToken"] = token
        return result

    def delete_job_template(self, params: Params) -> None:
        self.templates.delete(params["jobTemplateId"])

    def describe_managed_job_template(self, params: Params) -> dict[str, Any]:
        template = managed_templates.find(params["templateName"], params.get("templateVersion"))
        return managed_templates.describe_payload(template, self.arns.region)

    def list_managed_job_templates(self, params: Params) -> dict[str, Any]:
        wanted = params.get("templateName")
        templates = [t for t in managed_templates.catalog() if wanted is None or t.name == wanted]
        start = decode_token(params.get("nextToken"), "ListManagedJobTemplates", int) or 0
        limit = page_size(params.get("maxResults"))
        chunk = templates[start : start + limit]
        result: dict[str, Any] = {
            "managedJobTemplates": [managed_templates.summary_payload(t, self.arns.region) for t in chunk]
        }
        if start + limit < len(templates):
            result["nextToken"] = encode_token("ListManagedJobTemplates", start + limit)
        return result

    # -- helpers ----------------------------------------------------------
    def _job_reference(self, job: Job) -> dict[str, Any]:
        result = {"jobArn": self.arns.job(job.job_id), "jobId": job.job_id}
        if job.description is not None:
            result["description"] = job.description
        return result

    def _job_summary(self, job: Job) -> dict[str, Any]:
        summary: dict[str, Any] = {
            "jobArn": self.arns.job(job.job_id),
            "jobId": job.job_id,
            "targetSelection": job.target_selection.value,
            "status": job.status.value,
            "createdAt": job.created_at,
            "lastUpdatedAt": job.last_updated_at,
            "isConcurrent": False,
        }
        if job.completed_at is not None:
            summary["completedAt"] = job.completed_at
        for target in job.targets:
            kind, name = self.arns.parse_target(target)
            group = self.registry.store.registry.get_group(name) if kind == "thinggroup" else None
            if group is not None:
                summary["thingGroupId"] = group.group_id
                break
        return summary
