"""Build and parse the ARNs of things, groups and jobs for one region and account."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from .errors import InvalidRequest

__all__ = ["Arns", "TargetKind"]

TargetKind = Literal["thing", "thinggroup"]

_TARGET = re.compile(
    r"arn:aws:iot:(?P<region>[a-z0-9-]+):(?P<account>\d{12}):(?P<kind>thing|thinggroup)/(?P<name>[a-zA-Z0-9:_-]{1,128})"
)

_LOCAL = re.compile(
    r"arn:aws:iot:(?P<region>[a-z0-9-]+):(?P<account>\d{12}):(?P<kind>[a-z]+)/(?P<name>[a-zA-Z0-9:_-]{1,128})"
)


@dataclass(frozen=True)
class Arns:
    """ARNs for the configured region and account (defaults as in AWS examples)."""

    region: str = "us-east-1"
    account: str = "123456789012"

    def _prefix(self) -> str:
        return f"arn:aws:iot:{self.region}:{self.account}"

    def thing(self, name: str) -> str:
        return f"{self._prefix()}:thing/{name}"

    def thing_group(self, name: str) -> str:
        return f"{self._prefix()}:thinggroup/{name}"

    def job(self, job_id: str) -> str:
        return f"{self._prefix()}:job/{job_id}"

    def policy(self, name: str) -> str:
        return f"{self._prefix()}:policy/{name}"

    @property
    def prefix(self) -> str:
        """``arn:aws:iot:REGION:ACCOUNT``, what policy resources start with."""
        return self._prefix()

    def certificate(self, certificate_id: str) -> str:
        return f"{self._prefix()}:cert/{certificate_id}"

    def job_template(self, template_id: str) -> str:
        return f"{self._prefix()}:jobtemplate/{template_id}"

    def parse_local(self, arn: str, kind: str) -> str:
        """The id in an ARN of ``kind`` (e.g. "job", "jobtemplate") of this region and account."""
        match = _LOCAL.fullmatch(arn)
        if match is None or match["kind"] != kind:
            raise InvalidRequest(f"{arn} is not a {kind} ARN")
        self._check_home(arn, match["region"], match["account"])
        return match["name"]

    def _check_home(self, arn: str, region: str, account: str) -> None:
        if (region, account) != (self.region, self.account):
            raise InvalidRequest(
                f"{arn} is in region {region} account {account}; "
                f"this server serves region {self.region} account {self.account}"
            )

    def parse_target(self, arn: str) -> tuple[TargetKind, str]:
        """Split a job target into ("thing" | "thinggroup", name).

        A target in another region or account is refused clearly rather than
        silently treated as local.
        """
        match = _TARGET.fullmatch(arn)
        if match is None:
            raise InvalidRequest(f"Target {arn} is not a thing or thing group ARN")
        self._check_home(f"Target {arn}", match["region"], match["account"])
        kind: TargetKind = "thing" if match["kind"] == "thing" else "thinggroup"
        return kind, match["name"]
