"""Wire decoding of an SQS message body: strict JSON, and a sentence for what cannot be.

What the decoded body *is* (an S3 notification, the S3 test event, an SNS envelope, an
EventBridge event...) is decided in one place, ``eventflow.events`` (``_bodies.classify``);
:func:`decode_body` only parses the text and turns every failure into ``INVALID``.
"""

from __future__ import annotations

import json
from typing import Any

from ..events._bodies import BodyKind, classify

__all__ = ("decode_body", "parse_json")


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON value (RFC 8259 has no NaN or Infinity)")


# json.loads with a hook builds a decoder per call; one shared decoder costs nothing
_DECODER = json.JSONDecoder(parse_constant=_refuse_constant)


def parse_json(text: str) -> Any:
    """Parse ``text`` as strict JSON: ``NaN`` and ``Infinity`` are refused as the
    ``ValueError`` of any invalid JSON. Nesting too deep for Python raises
    ``RecursionError``."""
    return _DECODER.decode(text)


_ADVICE = (
    "eventflow hands handlers JSON events, as Lambda does. Send JSON bodies, or consume "
    "this queue yourself."
)


def decode_body(body: str) -> tuple[BodyKind, Any]:
    """Classify an SQS message body and return the payload Lambda would have delivered.

    Never raises: a body that cannot become an event, for whatever reason (not JSON, nested
    too deeply, an envelope with a malformed field), is ``INVALID``, so that a poison
    message fails its own event and never stops the source.

    Returns:
        ``(kind, payload)``; for ``INVALID`` the payload is a sentence saying why.
    """
    try:
        data = parse_json(body)
    except RecursionError:
        return BodyKind.INVALID, (
            "The SQS message body is JSON nested too deeply for Python to decode (beyond "
            f"its recursion limit). {_ADVICE}"
        )
    except Exception as exc:  # ValueError for bad JSON; anything else for a non-text body
        return BodyKind.INVALID, f"The SQS message body is not valid JSON ({exc}). {_ADVICE}"
    try:
        return classify(data)
    except Exception as exc:
        # a known envelope whose fields are malformed (say, an UnsubscribeURL that is no URL)
        return BodyKind.INVALID, (
            "The SQS message body is JSON but could not be turned into an event "
            f"({type(exc).__name__}: {exc}); check the fields of the envelope it carries."
        )
