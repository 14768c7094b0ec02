"""The messages of an SQS dead-letter queue, read and deleted one by one for ``eventflow redrive``.

Messages are received with a visibility timeout long enough for the command to decide on
each; one that is redriven is deleted (``DeleteMessage``), one left in place is made
visible again at once (``ChangeMessageVisibility`` to 0), so nothing else waits for it.
"""

from __future__ import annotations

from contextlib import AsyncExitStack
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Self

from ._clients import resolve_region, shared_client
from ._errors import check_resource
from ._sink_base import region_of_queue_url

__all__ = ("ReceivedMessage", "SQSDeadLetters")

MAX_RECEIVE = 10  # ReceiveMessage's MaxNumberOfMessages bound


@dataclass(frozen=True, slots=True)
class ReceivedMessage:
    """One received message: its ID, body, String attributes and receipt handle."""

    message_id: str
    body: str
    attributes: dict[str, str]
    receipt_handle: str


class SQSDeadLetters:
    """An SQS queue read as a dead-letter queue (an async context manager).

    Args:
        queue_url: The queue's URL.
        endpoint_url: Another SQS endpoint; ``None`` for AWS or ``AWS_ENDPOINT_URL*``.
        region_name: The region; by default the queue URL's, else the AWS configuration's.
        visibility_timeout: Seconds a received message stays hidden while it is decided on.
    """

    def __init__(
        self,
        queue_url: str,
        *,
        endpoint_url: str | None = None,
        region_name: str | None = None,
        visibility_timeout: int = 300,
    ) -> None:
        self.queue_url = queue_url
        self._endpoint_url = endpoint_url
        self._region = region_name or region_of_queue_url(queue_url)
        self._visibility = visibility_timeout
        self._stack = AsyncExitStack()
        self._client: Any = None

    async def __aenter__(self) -> Self:
        async with AsyncExitStack() as stack:
            self._client = await stack.enter_async_context(
                shared_client(
                    "sqs",
                    region_name=resolve_region(None, self._region),
                    endpoint_url=self._endpoint_url,
                )
            )
            self._stack = stack.pop_all()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._stack.aclose()

    async def approximate_count(self) -> int:
        """The queue's ``ApproximateNumberOfMessages`` (visible ones); proves it is reachable."""
        result = await check_resource(
            self._client,
            "get_queue_attributes",
            {"QueueUrl": self.queue_url, "AttributeNames": ["ApproximateNumberOfMessages"]},
            what="dead-letter queue",
            resource=self.queue_url,
            iam_action="sqs:GetQueueAttributes",
            check_hint="check the queue URL and the AWS configuration (AWS_ENDPOINT_URL)",
        )
        return int(result.get("Attributes", {}).get("ApproximateNumberOfMessages", 0))

    async def receive(self, limit: int) -> list[ReceivedMessage]:
        """Up to ``limit`` (at most 10) messages, waiting up to a second; [] when none came."""
        response = await self._client.receive_message(
            QueueUrl=self.queue_url,
            MaxNumberOfMessages=max(1, min(MAX_RECEIVE, limit)),
            WaitTimeSeconds=1,  # a long poll asks every SQS server: [] means the queue is empty
            VisibilityTimeout=self._visibility,
            MessageAttributeNames=["All"],
        )
        out: list[ReceivedMessage] = []
        for m in response.get("Messages", []):
            attributes = {
                name: str(value["StringValue"])
                for name, value in m.get("MessageAttributes", {}).items()
                if "StringValue" in value
            }
            out.append(ReceivedMessage(m["MessageId"], m["Body"], attributes, m["ReceiptHandle"]))
        return out

    async def delete(self, message: ReceivedMessage) -> None:
        """Delete ``message`` from the queue."""
        await self._client.delete_message(
            QueueUrl=self.queue_url, ReceiptHandle=message.receipt_handle
        )

    async def release(self, message: ReceivedMessage) -> None:
        """Make ``message`` visible again at once: it stays in the queue as it was."""
        await self._client.change_message_visibility(
            QueueUrl=self.queue_url, ReceiptHandle=message.receipt_handle, VisibilityTimeout=0
        )

    def __repr__(self) -> str:
        return f"SQSDeadLetters({self.queue_url!r})"
