"""KinesisSink: dead letters and destination records onto a Kinesis data stream.

A sink for another AWS batch API is this much: the entry a message becomes, the call, and
how the response reports each entry (the buffer, batching and retries are the
:class:`~eventflow.aws._batcher.Batcher`'s, held through
:class:`~eventflow.aws._sink_base.BatchSink`).
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from .._clock import Clock
from .._errors import ConfigurationError
from ..sinks import Message, SinkRejected
from ._batcher import Fault, positional_faults
from ._errors import check_resource
from ._sink_base import BatchSink, utf8_len

__all__ = ("KinesisSink",)

KINESIS_MAX_RECORDS = 500  # PutRecords: records per call
KINESIS_MAX_BATCH_BYTES = 5 * 1_048_576  # per call, data and partition keys
KINESIS_MAX_RECORD_BYTES = 1_048_576  # per record, data and partition key
_MAX_PARTITION_KEY = 256  # characters
# per-record PutRecords codes worth retrying (PutRecords API reference)
_RETRYABLE = frozenset(
    {"ProvisionedThroughputExceededException", "InternalFailure", "KMSThrottlingException"}
)


def _request_id(message: Message) -> str | None:
    """The request ID of a dead letter (``RequestID``) or of a destination record."""
    request_id = message.attributes.get("RequestID")
    if request_id:
        return request_id
    try:
        record = json.loads(message.body)
    except ValueError:
        return None
    context = record.get("requestContext") if isinstance(record, dict) else None
    found = context.get("requestId") if isinstance(context, dict) else None
    return found if isinstance(found, str) and found else None


class KinesisSink(BatchSink):
    """Puts each message on a Kinesis data stream, up to 500 at a time with ``PutRecords``.

    A record's data is the message body, unchanged (UTF-8): the event payload as JSON for
    a dead letter, the invocation record as JSON for a destination. Its partition key is
    the request ID (a dead letter's ``RequestID``, a record's ``requestContext.requestId``),
    so the messages of one event go to one shard, in order; a message without one gets a
    random key. Kinesis records carry no attributes: a dead letter's ``ErrorCode`` and
    ``ErrorMessage`` are not sent (use :class:`SQSSink` or :class:`SNSSink` for dead
    letters that must carry them, or a destination record, which holds the error).

    A call carries at most 500 records and 5 MiB; a record of more than 1 MiB (data and
    partition key) is rejected with :class:`~eventflow.sinks.SinkRejected` before it is
    sent. Records the stream throttles (``ProvisionedThroughputExceededException``) are
    retried alone with backoff, then raised as :class:`~eventflow.aws.AWSError`.

    Args:
        stream_name: The stream's name or ARN.
        endpoint_url: The Kinesis endpoint, for LocalStack or moto; None for AWS.
        region_name: The region; by default the one in a stream ARN, else the standard
            AWS configuration, else ``us-east-1``.
        session: An aiobotocore session; by default a shared one.
        check: Check the stream with ``DescribeStreamSummary`` when the sink opens.
        linger: Seconds a message waits for others to share its call (0: send at once).
        buffer_size: Messages buffered before ``send`` waits for room.
        clock: The clock its retry backoff sleeps on (pass the app's ``app.clock``, a
            ``VirtualClock`` in tests); the event loop's by default.

    Raises:
        ConfigurationError: An option is out of range.
    """

    _service = "kinesis"
    _api = "PutRecords"
    _kind = "Kinesis stream"
    _max_entries = KINESIS_MAX_RECORDS
    _max_batch_bytes = KINESIS_MAX_BATCH_BYTES

    def __init__(
        self,
        stream_name: str,
        *,
        endpoint_url: str | None = None,
        region_name: str | None = None,
        session: Any = None,
        check: bool = True,
        linger: float = 0.005,
        buffer_size: int = 1000,
        clock: Clock | None = None,
    ) -> None:
        if not isinstance(stream_name, str) or not stream_name:
            raise ConfigurationError(
                f"stream_name must be a Kinesis stream name such as 'dead-letters' or a "
                f"stream ARN, got {stream_name!r}."
            )
        is_arn = stream_name.startswith("arn:")
        super().__init__(
            target=stream_name,
            endpoint_url=endpoint_url,
            region_name=region_name,
            session=session,
            check=check,
            linger=linger,
            buffer_size=buffer_size,
            clock=clock,
        )
        self.stream_name = stream_name
        self._stream = {"StreamARN" if is_arn else "StreamName": stream_name}
        self._max_entry_bytes = KINESIS_MAX_RECORD_BYTES

    def __repr__(self) -> str:
        return f"KinesisSink({self.stream_name!r})"

    async def _start(self, client: Any) -> None:
        if self._check:
            await check_resource(
                client,
                "describe_stream_summary",
                dict(self._stream),
                what="Kinesis stream",
                resource=self.stream_name,
                iam_action="kinesis:PutRecords",
            )

    def _prepare(self, message: Message) -> tuple[dict[str, Any], int]:
        try:
            data = message.body.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise SinkRejected(
                f"The message body is not valid UTF-8 ({exc.reason} at index {exc.start}), "
                f"so {self._target_phrase()} cannot carry it as text."
            ) from None
        if not data:
            raise SinkRejected(
                f"The message body is empty, and {self._target_phrase()} does not accept an "
                "empty record."
            )
        key = (_request_id(message) or str(uuid.uuid4()))[:_MAX_PARTITION_KEY]
        size = len(data) + utf8_len(key)
        if size > self._max_entry_bytes:
            raise self._too_large(size, f"{len(data):,} of data and the partition key")
        return {"Data": data, "PartitionKey": key}, size

    async def _call(self, client: Any, entries: list[dict[str, Any]]) -> list[Fault | None]:
        response = await client.put_records(Records=entries, **self._stream)
        return positional_faults(
            response.get("Records", []),
            len(entries),
            ok_field="SequenceNumber",
            retryable_codes=_RETRYABLE,
        )
