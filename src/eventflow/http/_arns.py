"""Function names as the Lambda API accepts them.

A function is named by its name (``demo``), a partial ARN (``123456789012:function:demo``)
or a full ARN (``arn:aws:lambda:us-east-1:123456789012:function:demo``), each optionally
qualified (``:$LATEST``). Destination and dead-letter ARNs are resolved by
:func:`eventflow.aws.sink_for_arn`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

__all__ = ("FunctionRef", "parse_function_name")

# the pattern of Lambda's FunctionName (spec §4.1), split into named parts
_FUNCTION: Final = re.compile(
    r"(?:arn:(?P<partition>aws[a-zA-Z-]*):lambda:(?P<region>[a-z]{2}(?:-gov|-iso[a-z]?)?-[a-z]+-\d):)?"
    r"(?:(?P<account>\d{12}):)?"
    r"(?:function:)?"
    r"(?P<name>[a-zA-Z0-9\-_.]{1,64})"
    r"(?::(?P<qualifier>\$LATEST(?:\.PUBLISHED)?|[a-zA-Z0-9\-_]{1,128}))?"
)


@dataclass(frozen=True, slots=True)
class FunctionRef:
    """A parsed ``FunctionName``: the name and whatever else the caller gave."""

    name: str
    region: str | None = None
    account: str | None = None
    qualifier: str | None = None


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
