"""Sinks for ARNs: the dead-letter and destination targets that Lambda's API names by ARN.

Lambda names an asynchronous function's targets by ARN: an SQS queue, an SNS topic or an
EventBridge bus. :func:`sink_for_arn` turns such an ARN into the sink that writes to it
(:class:`SQSSink`, :class:`SNSSink`, :class:`EventBridgeSink`); an SQS queue is known by
its URL, which :func:`queue_url_for_arn` looks up with ``GetQueueUrl``.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from .._errors import ConfigurationError
from ._clients import shared_client
from ._errors import check_resource

if TYPE_CHECKING:
    from ..sinks import Sink

__all__ = ("SINK_SERVICES", "Arn", "parse_arn", "queue_url_for_arn", "sink_for_arn")

#: The services whose ARNs :func:`sink_for_arn` resolves, with what their ARNs name.
SINK_SERVICES: Final = {
    "sqs": "an SQS queue",
    "sns": "an SNS topic",
    "events": "an EventBridge bus",
}

_ARN: Final = re.compile(
    r"arn:(?P<partition>aws[a-zA-Z-]*):(?P<service>[a-z0-9-]+):(?P<region>[a-z0-9-]*):"
    r"(?P<account>\d{12}|):(?P<resource>.+)"
)


@dataclass(frozen=True, slots=True)
class Arn:
    """The parts of an ARN ``arn:partition:service:region:account:resource``."""

    partition: str
    service: str
    region: str
    account: str
    resource: str


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


async def queue_url_for_arn(
    arn: str,
    *,
    endpoint_url: str | None = None,
    region_name: str | None = None,
    session: Any = None,
    label: str = "The SQS queue ARN",
) -> str:
    """The URL of the SQS queue that ``arn`` names, looked up with ``GetQueueUrl``.

    Args:
        arn: ``arn:aws:sqs:region:account:name``.
        endpoint_url: The SQS endpoint; None for the standard AWS configuration
            (``AWS_ENDPOINT_URL`` and the like are honoured).
        region_name: The client's region; None for the ARN's.
        session: An aiobotocore session; None for the default one.
        label: What ``arn`` is, as the subject of the message for a malformed ARN.

    Raises:
        ConfigurationError: ``arn`` is not an SQS queue ARN with a region.
        ResourceCheckFailed: The queue does not exist, or could not be looked up; the
            message says why and what to do (from the adapters' AWS error map).
    """
    parsed = _parsed(arn, ("sqs",), label)
    params = {"QueueName": parsed.resource}
    if parsed.account:
        params["QueueOwnerAWSAccountId"] = parsed.account
    async with shared_client(
        "sqs",
        region_name=region_name or parsed.region,
        endpoint_url=endpoint_url,
        session=session,
    ) as client:
        response = await check_resource(
            client,
            "get_queue_url",
            params,
            what="SQS queue",
            resource=arn,
            iam_action="sqs:GetQueueUrl",
            check_hint="name an existing queue",
        )
    return str(response["QueueUrl"])


async def sink_for_arn(
    arn: str,
    *,
    services: Collection[str] = tuple(SINK_SERVICES),
    endpoint_url: str | None = None,
    region_name: str | None = None,
    session: Any = None,
    label: str = "The target ARN",
) -> Sink:
    """A new sink writing to the queue, topic or bus that ``arn`` names.

    The sink is not opened: the App opens it (which checks the target) when a handler
    uses it. An SQS queue's URL is looked up first (:func:`queue_url_for_arn`).

    Args:
        arn: An SQS queue, SNS topic or EventBridge bus (``...:event-bus/name``) ARN.
        services: The services accepted, among ``"sqs"``, ``"sns"`` and ``"events"``.
        endpoint_url: The endpoint of the service; None for the standard AWS
            configuration (``AWS_ENDPOINT_URL`` and the like are honoured).
        region_name: The sink's region; None for the ARN's.
        session: An aiobotocore session; None for the default one.
        label: What ``arn`` is, as the subject of the message for an ARN of the wrong
            kind (such as the field that held it).

    Raises:
        ConfigurationError: ``arn`` is not the ARN of an accepted kind of target.
        ResourceCheckFailed: An SQS queue's URL could not be looked up.
    """
    from ._sinks import EventBridgeSink, SNSSink, SQSSink

    parsed = _parsed(arn, services, label)
    region = region_name or parsed.region
    if parsed.service == "sqs":
        url = await queue_url_for_arn(
            arn, endpoint_url=endpoint_url, region_name=region, session=session, label=label
        )
        return SQSSink(url, endpoint_url=endpoint_url, region_name=region, session=session)
    if parsed.service == "sns":
        return SNSSink(arn, endpoint_url=endpoint_url, region_name=region, session=session)
    kind, _, bus = parsed.resource.partition("/")
    if kind != "event-bus" or not bus:
        raise ConfigurationError(
            f"{label} must be an EventBridge bus ARN "
            f"'arn:aws:events:region:account:event-bus/name', got {arn!r}."
        )
    return EventBridgeSink(bus, endpoint_url=endpoint_url, region_name=region, session=session)


def _parsed(arn: str, services: Collection[str], label: str) -> Arn:
    unknown = sorted(set(services) - set(SINK_SERVICES))
    if unknown:
        raise ConfigurationError(
            f"services may hold {', '.join(map(repr, SINK_SERVICES))}, got {unknown!r}."
        )
    parsed = parse_arn(arn) if isinstance(arn, str) else None
    if parsed is None or parsed.service not in services or not parsed.region:
        expected = " or ".join(SINK_SERVICES[s] for s in SINK_SERVICES if s in services)
        raise ConfigurationError(f"{label} must be the ARN of {expected}, got {arn!r}.")
    return parsed
