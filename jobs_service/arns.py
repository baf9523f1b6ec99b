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

    def parse_target(self, arn: str) -> tuple[TargetKind, str]:
        """Split a job target into ("thing" | "thinggroup", name).

        A target in another region or account is refused clearly rather than
        silently treated as local.
        """
        match = _TARGET.fullmatch(arn)
        if match is None:
            raise InvalidRequest(f"Target {arn} is not a thing or thing group ARN")
        if (match["region"], match["account"]) != (self.region, self.account):
            raise InvalidRequest(
                f"Target {arn} is in region {match['region']} account {match['account']}; "
                f"this server serves region {self.region} account {self.account}"
            )
        kind: TargetKind = "thing" if match["kind"] == "thing" else "thinggroup"
        return kind, match["name"]
