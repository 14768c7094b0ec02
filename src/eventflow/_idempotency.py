"""Idempotency: exactly-once effects on top of at-least-once delivery.

``@eventflow.handler(idempotency=eventflow.Idempotency(...))`` makes the first attempt of
an event claim its key in a store (``IN_PROGRESS``, with a lease); success records the
result (``COMPLETED``, kept for ``expires_after``); failure releases the claim so the retry
runs. A duplicate of a completed key does not run (it counts as succeeded and returns the
stored result); a duplicate of a key in progress waits for the outcome without using a
retry attempt; the same key with a different payload is an :class:`IdempotencyConflict`.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ._errors import ConfigurationError, IdempotencyKeyMissing, InvalidPayload
from ._payload import payload_problem

if TYPE_CHECKING:
    from .stores import IdempotencyStore

__all__ = (
    "DEFAULT_LEASE",
    "Idempotency",
    "fingerprint",
    "key_text",
    "natural_key",
    "resolve_key",
)

# no payload holds this key, so payload.get(_NO_FIELD) is None: "use the key function"
_NO_FIELD = object()

# How long a claim lasts when the handler has no timeout: Lambda's longest timeout.
DEFAULT_LEASE = 900.0


# json.dumps with options builds an encoder per call; this one is the same encoder, reused
_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def canonical_json(value: Any) -> str:
    """JSON with sorted keys and no whitespace: equal values give equal text."""
    return _CANONICAL.encode(value)


def fingerprint(payload: Any) -> str:
    """A stable hash of a payload, for stores that compare payloads by hash.

    Raises:
        InvalidPayload: the payload has no canonical JSON text (say, a lone surrogate).
    """
    try:
        return hashlib.sha256(canonical_json(payload).encode("utf-8")).hexdigest()
    except (ValueError, TypeError, RecursionError) as exc:  # UnicodeEncodeError included
        problem = payload_problem(payload) or str(exc)
        raise InvalidPayload(
            f"The payload cannot be fingerprinted for the idempotency check ({problem}); "
            "send payloads that pass eventflow's payload limits."
        ) from None


def _records(event: Mapping[str, Any]) -> list[Mapping[str, Any]] | None:
    records = event.get("Records")
    if isinstance(records, list) and records and all(isinstance(r, Mapping) for r in records):
        return records
    return None


def natural_key(event: Any) -> str:
    """The identity AWS gives the event, or a hash of its canonical JSON.

    S3 record → bucket + key + version ID (or sequencer); SNS → ``MessageId``;
    EventBridge → ``id``; SQS record → ``messageId``; CodeCommit trigger record →
    ``eventId``; SES record → ``mail.messageId``; CodePipeline job → its ID; CloudFormation
    custom resource → stack, logical ID and ``RequestId``; Config rule → rule name and a
    hash of ``resultToken``; IoT Events action → ``actionExecutionId``; CloudWatch Logs →
    log group, stream and the first and last log event IDs; anything else →
    ``sha256:<hash>``. Several records are joined in order.
    """
    if type(event) is dict or isinstance(event, Mapping):  # a plain dict skips the ABC check
        records = _records(event)
        if records is not None:
            parts: list[str] = []
            for r in records:
                source = r.get("eventSource") or r.get("EventSource")
                if source == "aws:s3" and isinstance(r.get("s3"), Mapping):
                    s3 = r["s3"]
                    obj = s3.get("object") or {}
                    version = obj.get("versionId") or obj.get("sequencer") or obj.get("eTag")
                    bucket = (s3.get("bucket") or {}).get("name")
                    parts.append(f"s3:{bucket}/{obj.get('key')}#{version}")
                elif source == "aws:sns" and isinstance(r.get("Sns"), Mapping):
                    parts.append(f"sns:{r['Sns'].get('MessageId')}")
                elif source == "aws:sqs" and "messageId" in r:
                    parts.append(f"sqs:{r['messageId']}")
                elif source == "aws:codecommit" and "eventId" in r:
                    parts.append(f"codecommit:{r['eventId']}")
                elif source == "aws:ses" and isinstance(r.get("ses"), Mapping):
                    parts.append(f"ses:{(r['ses'].get('mail') or {}).get('messageId')}")
                else:
                    parts = []
                    break
            if parts:
                return "|".join(parts)
        if event.get("Type") == "Notification" and "MessageId" in event:
            return f"sns:{event['MessageId']}"
        if "detail-type" in event and "source" in event and "id" in event:
            return f"eventbridge:{event['id']}"
        other = _other_source_key(event)
        if other is not None:
            return other
    return "sha256:" + fingerprint(event)


def _other_source_key(event: Mapping[str, Any]) -> str | None:
    """The identity of a CodePipeline job, CloudFormation request, Config rule event,
    IoT Events action or CloudWatch Logs delivery; None for anything else."""
    job = event.get("CodePipeline.job")
    if isinstance(job, Mapping) and "id" in job:
        return f"codepipeline:{job['id']}"
    if "RequestType" in event and "StackId" in event and "RequestId" in event:
        return (
            f"cloudformation:{event['StackId']}/{event.get('LogicalResourceId')}/"
            f"{event['RequestId']}"
        )
    token = event.get("resultToken")
    if isinstance(token, str) and "configRuleName" in event:
        digest = hashlib.sha256(token.encode("utf-8")).hexdigest()
        return f"config:{event['configRuleName']}:{digest}"
    inner = event.get("event")
    if isinstance(inner, Mapping) and isinstance(inner.get("payload"), Mapping):
        execution = inner["payload"].get("actionExecutionId")
        if execution is not None:
            return f"iotevents:{execution}"
    logs = event.get("awslogs")
    if isinstance(logs, Mapping) and isinstance(logs.get("data"), str):
        return _awslogs_key(logs["data"])
    return None


def _awslogs_key(data: str) -> str | None:
    # the first and last log event IDs name a delivery; the data's hash when undecodable
    import base64
    import gzip

    try:
        doc = json.loads(gzip.decompress(base64.b64decode(data)))
        events = doc["logEvents"]
        first, last = (events[0]["id"], events[-1]["id"]) if events else ("", "")
        return f"cwlogs:{doc['owner']}:{doc['logGroup']}:{doc['logStream']}:{first}:{last}"
    except (ValueError, OSError, EOFError, KeyError, IndexError, TypeError):
        return None


def _dotted(path: str) -> Callable[[Any], str]:
    """The key text at ``path`` in an event."""
    parts = path.split(".")

    def get(event: Any) -> Any:
        value = event
        for i, part in enumerate(parts):
            if type(value) is dict and part in value:
                value = value[part]
            elif isinstance(value, Mapping) and part in value:
                value = value[part]
            elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
                value = value[int(part)]
            else:
                where = ".".join(parts[: i + 1])
                raise IdempotencyKeyMissing(
                    f"The idempotency key path {path!r} is not in the event: it has no "
                    f"{where!r}. Fix Idempotency(key=...) or the event."
                )
        return value

    if len(parts) == 1:
        (only,) = parts

        def get_one(event: Any) -> str:
            # the common case, a top-level field of a JSON object: one lookup
            if type(event) is dict and only in event:
                return key_text(event[only])
            return key_text(get(event))

        return get_one
    return lambda event: key_text(get(event))


@dataclass(frozen=True)
class Idempotency:
    """The ``idempotency=`` option of a handler.

    Args:
        store: Where claims and results live: ``eventflow.stores.MemoryStore()`` (the
            default when ``None``; one process), ``SQLiteStore(path)`` (embedded, survives
            a restart, shared by processes on one machine) or
            ``eventflow.aws.DynamoDBStore(table)`` (shared by every machine).
        key: ``None`` for the event's natural identity (see :func:`natural_key`), a dotted
            path into the payload (``"detail.orderId"``), or a callable ``key(event) -> str``.
        expires_after: Seconds a completed result is kept (and duplicates answered).
        validate_payload: Refuse the same key with a different payload
            (:class:`eventflow.IdempotencyConflict`) instead of answering it silently.
        lease: Seconds a claim lasts before another attempt may take it over; default:
            the handler's timeout, else 900 s (Lambda's longest timeout).
    """

    store: IdempotencyStore | None = None
    key: str | Callable[[Any], Any] | None = None
    expires_after: float = 3600.0
    validate_payload: bool = True
    lease: float | None = None
    # derived once for the hot path: key text, lease, and the store if it never blocks
    _key: Callable[[Any], str] = field(init=False, repr=False, compare=False)
    _lease: float = field(init=False, repr=False, compare=False)
    _sync_store: Any = field(init=False, repr=False, compare=False)
    _memory: Any = field(init=False, repr=False, compare=False)
    _field: object = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        from .stores import MemoryStore  # stores imports this module

        if self.store is None:
            object.__setattr__(self, "store", MemoryStore())
        elif not callable(getattr(self.store, "claim", None)):
            raise ConfigurationError(
                f"Idempotency(store=...) must be an idempotency store (MemoryStore, "
                f"SQLiteStore, DynamoDBStore or your own), got {self.store!r}."
            )
        if self.key is not None and not isinstance(self.key, str) and not callable(self.key):
            raise ConfigurationError(
                f"Idempotency(key=...) must be None, a dotted path such as 'detail.orderId', "
                f"or a function of the event, got {self.key!r}."
            )
        if isinstance(self.key, str) and (not self.key or ".." in self.key):
            raise ConfigurationError(f"Idempotency(key={self.key!r}) is not a dotted path.")
        for option in ("expires_after", "lease"):
            value = getattr(self, option)
            if value is None and option == "lease":
                continue
            if (
                isinstance(value, bool)
                or not isinstance(value, int | float)
                or not (value > 0 and math.isfinite(value))
            ):
                raise ConfigurationError(
                    f"Idempotency({option}=...) must be a positive number of seconds, "
                    f"got {value!r}."
                )
        object.__setattr__(self, "_key", self._key_function())
        object.__setattr__(self, "_lease", self.lease or DEFAULT_LEASE)
        # a store that never blocks (MemoryStore) is called without an await
        sync = self.store if callable(getattr(self.store, "claim_nowait", None)) else None
        object.__setattr__(self, "_sync_store", sync)
        # a MemoryStore (not a subclass, which may override its methods) is claimed inline
        memory = self.store if type(self.store) is MemoryStore else None
        object.__setattr__(self, "_memory", memory)
        # a key that is one top-level field: the worker reads it without calling _key
        one = self.key if isinstance(self.key, str) and "." not in self.key else _NO_FIELD
        object.__setattr__(self, "_field", one)

    def _key_function(self) -> Callable[[Any], str]:
        if self.key is None:
            return natural_key
        if isinstance(self.key, str):
            return _dotted(self.key)
        get = self.key

        def text(event: Any) -> str:
            value = get(event)
            return value if type(value) is str else key_text(value)

        return text


def key_text(value: Any) -> str:
    """A key value as the string a store keeps; raises ``IdempotencyKeyMissing`` for None."""
    if type(value) is str:
        return value
    if type(value) is int:
        return str(value)  # ids are often ints: no need for the JSON encoder
    if value is None:
        raise IdempotencyKeyMissing(
            "The idempotency key of this event is None; give every event a key, or use "
            "Idempotency(key=None) for the natural identity."
        )
    return canonical_json(value)


def resolve_key(idempotency: Idempotency, event: Any) -> str:
    """The key for ``event``; raises ``IdempotencyKeyMissing`` with a clear message."""
    return idempotency._key(event)
