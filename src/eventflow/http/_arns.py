"""Function names and ARNs as the Lambda API accepts them, and destination ARNs.

A function is named by its name (``demo``), a partial ARN (``123456789012:function:demo``)
or a full ARN (``arn:aws:lambda:us-east-1:123456789012:function:demo``), each optionally
qualified (``:$LATEST``). Destination and dead-letter targets are SQS queue, SNS topic
and EventBridge bus ARNs.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

__all__ = ("Arn", "FunctionRef", "parse_arn", "parse_function_name")

# the pattern of Lambda's FunctionName (spec §4.1), split into named parts
_FUNCTION: Final = re.compile(
    r"(?:arn:(?P<partition>aws[a-zA-Z-]*):lambda:(?P<region>[a-z]{2}(?:-gov|-iso[a-z]?)?-[a-z]+-\d):)?"
    r"(?:(?P<account>\d{12}):)?"
    r"(?:function:)?"
    r"(?P<name>[a-zA-Z0-9\-_.]{1,64})"
    r"(?::(?P<qualifier>\$LATEST(?:\.PUBLISHED)?|[a-zA-Z0-9\-_]{1,128}))?"
)
_ARN: Final = re.compile(
    r"arn:(?P<partition>aws[a-zA-Z-]*):(?P<service>[a-z0-9-]+):(?P<region>[a-z0-9-]*):"
    r"(?P<account>\d{12}|):(?P<resource>.+)"
)


@dataclass(frozen=True, slots=True)
class FunctionRef:
    """A parsed ``FunctionName``: the name and whatever else the caller gave."""

    name: str
    region: str | None = None
    account: str | None = None
    qualifier: str | None = None


@dataclass(frozen=True, slots=True)
class Arn:
    """The parts of an ARN ``arn:partition:service:region:account:resource``."""

    partition: str
    service: str
    region: str
    account: str
    resource: str


def parse_function_name(text: str) -> FunctionRef | None:
    """Parse a name, partial ARN or full ARN; ``None`` if it is none of those."""
    if len(text) > 256:
        return None
    found = _FUNCTION.fullmatch(text)
    if found is None:
        return None
    return FunctionRef(
        name=found["name"],
        region=found["region"],
        account=found["account"],
        qualifier=found["qualifier"],
    )


def parse_arn(text: str) -> Arn | None:
    """Split an ARN into its parts; ``None`` if ``text`` is not an ARN."""
    found = _ARN.fullmatch(text)
    if found is None:
        return None
    return Arn(
        partition=found["partition"],
        service=found["service"],
        region=found["region"],
        account=found["account"],
        resource=found["resource"],
    )
