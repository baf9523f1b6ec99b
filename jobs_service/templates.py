"""Job templates: custom ones kept in the store, AWS-managed ones from the catalog.

:meth:`Templates.document_for_job` turns CreateJob's ``jobTemplateArn`` and
``documentParameters`` into the document and settings a job is created with.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from . import managed_templates
from .arns import Arns
from .clock import Clock
from .documents import require_json_object
from .engine.jobs import UPDATABLE_SETTINGS
from .errors import Conflict, InvalidRequest, ResourceNotFound
from .job_settings import check_job_settings
from .models import JobTemplate
from .store import Store

__all__ = ["TEMPLATE_SETTINGS", "JobDocument", "Templates"]

# A custom template carries the settings UpdateJob may change; a job made from it inherits them.
TEMPLATE_SETTINGS = UPDATABLE_SETTINGS


@dataclass(frozen=True)
class JobDocument:
    """The document a new job gets, and the settings it inherits from its template."""

    document: str
    raw_document: str | None
    settings: dict[str, Any]
    # A job from an AWS-managed template takes its description when it has none.
    description: str | None = None


class Templates:
    def __init__(self, store: Store, clock: Clock, arns: Arns) -> None:
        self.store = store
        self.clock = clock
        self.arns = arns

    def create(
        self,
        template_id: str,
        *,
        description: str,
        document: str | None,
        document_source: str | None,
        job_arn: str | None,
        settings: dict[str, Any],
    ) -> JobTemplate:
        """CreateJobTemplate from a document or by copying an existing job."""
        sources = [
            name
            for name, value in (
                ("document", document),
                ("documentSource", document_source),
                ("jobArn", job_arn),
            )
            if value is not None
        ]
        if len(sources) != 1:
            raise InvalidRequest("Give exactly one of document, documentSource or jobArn")
        if document_source is not None:
            raise InvalidRequest("documentSource (a document in S3) is not supported by this server")
        if job_arn is not None:
            job = self.store.jobs.get_job(self.arns.parse_local(job_arn, "job"))
            if job is None:
                raise ResourceNotFound(f"Job {job_arn} does not exist")
            document = job.raw_document or job.document
            settings = {**{k: job.settings[k] for k in TEMPLATE_SETTINGS if k in job.settings}, **settings}
        assert document is not None
        require_json_object(document)
        check_job_settings(settings, now=self.clock.now())
        with self.store.atomic():
            if self.store.templates.get_template(template_id) is not None:
                raise Conflict(f"Job template {template_id} already exists")
            template = JobTemplate(
                template_id=template_id,
                description=description,
                document=document,
                settings=settings,
                created_at=self.clock.now(),
            )
            self.store.templates.insert_template(template)
        return template

    def get(self, template_id: str) -> JobTemplate:
        template = self.store.templates.get_template(template_id)
        if template is None:
            raise ResourceNotFound(f"Job template {template_id} does not exist")
        return template

    def delete(self, template_id: str) -> None:
        if not self.store.templates.delete_template(template_id):
            raise ResourceNotFound(f"Job template {template_id} does not exist")

    def document_for_job(
        self, template_arn: str | None, document: str | None, parameters: dict[str, str] | None
    ) -> JobDocument:
        """Resolve CreateJob's document sources; exactly one must give a document."""
        if template_arn is None:
            if parameters:
                raise InvalidRequest("documentParameters can be used only with an AWS managed job template")
            if document is None:
                raise InvalidRequest("A job needs a document or a jobTemplateArn")
            return JobDocument(document, None, {})
        if document is not None:
            raise InvalidRequest("Give either document or jobTemplateArn, not both")
        managed = managed_templates.parse_arn(template_arn)
        if managed is not None:
            region, name, version = managed
            if region != self.arns.region:
                raise InvalidRequest(
                    f"{template_arn} is in region {region}; this server serves {self.arns.region}"
                )
            template = managed_templates.find(name, version)
            resolved = managed_templates.substitute(template.document, parameters or {}, template)
            return JobDocument(resolved, template.document, {}, template.description)
        custom = self.get(self.arns.parse_local(template_arn, "jobtemplate"))
        if parameters:
            raise InvalidRequest(
                "documentParameters can be used only with an AWS managed job template,"
                f" not with the custom template {custom.template_id}"
            )
        assert custom.document is not None
        inherited = {k: custom.settings[k] for k in TEMPLATE_SETTINGS if k in custom.settings}
        if "maintenanceWindows" in custom.settings:
            inherited["schedulingConfig"] = {"maintenanceWindows": custom.settings["maintenanceWindows"]}
        return JobDocument(custom.document, None, inherited)
