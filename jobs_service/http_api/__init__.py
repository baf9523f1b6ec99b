"""The AWS rest-json control plane, driven by botocore's own service models.

Requests are routed, parsed and validated from the botocore model of the
service (``iot``), SigV4-verified with botocore's signer, and dispatched to
plain handler functions registered by operation name::

    app = build_app({"DescribeJob": describe_job}, {"AKID": "secret"}, region="us-east-1")

A handler receives the input keyed by model member names (see
:mod:`jobs_service.http_api.params` for how values are typed) and returns the
output as a wire-format dict; errors are :class:`jobs_service.errors.JobsError`
subclasses and reach boto3 as the matching ``client.exceptions.*``.
"""

from iot_jobs_bridge.jobs_service.http_api.app import MAX_BODY_BYTES, build_app
from iot_jobs_bridge.jobs_service.http_api.service import Handler

__all__ = ["MAX_BODY_BYTES", "Handler", "build_app"]
