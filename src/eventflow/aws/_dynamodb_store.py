"""DynamoDBStore: the distributed idempotency store, one DynamoDB table for every machine.

Each key is one item, and every decision is one conditional write, so processes on any
number of machines agree without a lock service:

- ``claim`` is a single ``PutItem`` that succeeds only when the key is free (no item, a
  completed result that has expired, or a claim whose lease has ended). When it fails,
  DynamoDB returns the item that stood in the way (``ReturnValuesOnConditionCheckFailure``),
  so the answer (``COMPLETED``, ``IN_PROGRESS`` or ``CONFLICT``) costs no second call.
- ``complete`` is an ``UpdateItem`` conditional on the claim's token; a holder whose lease
  ended and was taken over cannot overwrite the new holder's record.
- ``release`` is a ``DeleteItem`` conditional on the token and on the claim still being in
  progress.

Items carry a ``ttl`` attribute (epoch seconds) so that DynamoDB's Time to Live deletes
expired results and abandoned claims by itself; eventflow never relies on that deletion
(it compares ``expires_at`` and ``lease_until`` with the time it passes in), it only keeps
the table from growing.
"""

from __future__ import annotations

import hashlib
import math
from contextlib import AsyncExitStack
from decimal import Decimal
from types import TracebackType
from typing import Any, Self

import anyio
import structlog
from botocore.exceptions import BotoCoreError, ClientError

from .._errors import ConfigurationError, InvalidPayload
from .._idempotency import fingerprint
from ..stores import Claim, ClaimStatus, new_token
from ._clients import shared_client
from ._errors import AWSError, check_resource, error_code

__all__ = ("DynamoDBStore",)

_log = structlog.get_logger("eventflow.dynamodb")

_IN_PROGRESS = "IN_PROGRESS"
_COMPLETED = "COMPLETED"
_CONDITION_FAILED = "ConditionalCheckFailedException"
_IAM_ACTIONS = "dynamodb:PutItem, dynamodb:UpdateItem, dynamodb:DeleteItem, dynamodb:GetItem"
_ACCESS = frozenset(
    {
        "AccessDenied",
        "AccessDeniedException",
        "UnrecognizedClientException",
        "InvalidClientTokenId",
        "SignatureDoesNotMatch",
        "ExpiredToken",
        "ExpiredTokenException",
    }
)
# DynamoDB's largest partition key value, in bytes; longer keys are stored as a hash
_MAX_KEY_BYTES = 2048
_CLOSE_TIMEOUT = 10.0
_CREATE_TIMEOUT = 300.0  # seconds create_table waits for the table to become ACTIVE

_CLAIM_CONDITION = (
    "attribute_not_exists(id) OR (#s = :completed AND expires_at <= :now) "
    "OR (#s = :inprog AND lease_until <= :now)"
)


def _number(value: float) -> str:
    """A DynamoDB ``N`` string for ``value``: its repr, without exponent notation."""
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"DynamoDB cannot store the number {value!r}; times must be finite.")
    text = repr(value)
    if "e" in text or "E" in text:
        text = format(Decimal(text), "f")
    return text


def _ttl(epoch: float) -> str:
    """The ``ttl`` attribute: whole epoch seconds, rounded up, as DynamoDB TTL requires."""
    return str(max(0, math.ceil(epoch)))


def _api(operation: str) -> str:
    return "".join(part.title() for part in operation.split("_"))


def _utf8(text: str, subject: str) -> bytes:
    """``text`` as UTF-8, or a clear error before any call (DynamoDB refuses the rest)."""
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InvalidPayload(
            f"{subject} cannot be stored in DynamoDB: it holds a lone surrogate "
            f"({text[exc.start : exc.end]!r} at character {exc.start}), which UTF-8 cannot "
            "encode; only this event's attempt fails."
        ) from None


class DynamoDBStore:
    """Claims and results in a DynamoDB table, shared by every process on every machine.

    Use it as the store of an idempotent handler::

        store = DynamoDBStore("eventflow-idempotency")

        @eventflow.handler(idempotency=eventflow.Idempotency(store=store, key="detail.id"))
        async def charge(event, context): ...

    The table needs a string partition key named ``id`` and nothing else; enable Time to
    Live on the attribute ``ttl`` so that expired records are deleted. Create it once with
    :meth:`create_table`, or with the AWS CLI::

        aws dynamodb create-table --table-name eventflow-idempotency \\
            --attribute-definitions AttributeName=id,AttributeType=S \\
            --key-schema AttributeName=id,KeyType=HASH \\
            --billing-mode PAY_PER_REQUEST
        aws dynamodb update-time-to-live --table-name eventflow-idempotency \\
            --time-to-live-specification Enabled=true,AttributeName=ttl

    Each item holds ``id`` (the key), ``status`` (``IN_PROGRESS`` or ``COMPLETED``),
    ``token`` (the current claim's, while in progress), ``fingerprint`` (the SHA-256 of
    the payload's canonical JSON, when the handler validates payloads), ``result`` (the
    JSON result), ``lease_until`` and ``expires_at`` (epoch seconds) and ``ttl``. A key
    longer than DynamoDB's 2,048-byte limit is stored as ``sha256-key:`` and its hash.

    The app opens the store when it starts: with ``check=True`` that calls
    ``DescribeTable`` and fails with :class:`~eventflow.aws.ResourceCheckFailed` if the
    table is missing or forbidden. The store needs the IAM actions ``dynamodb:PutItem``,
    ``dynamodb:UpdateItem``, ``dynamodb:DeleteItem`` and ``dynamodb:GetItem`` on the table
    (and ``dynamodb:DescribeTable`` for the check). A call that fails for any other reason
    than a claim being taken (unreachable, throttled after botocore's retries, denied)
    raises :class:`~eventflow.aws.AWSError`: the attempt fails and is retried. A result
    larger than DynamoDB's 400 KB item limit cannot be recorded; the app logs it, and a
    later duplicate runs again.

    Args:
        table_name: The table's name (or ARN).
        endpoint_url: The DynamoDB endpoint, for LocalStack or moto; None for AWS.
        region_name: The region; by default the standard AWS configuration, else
            ``us-east-1``.
        session: An aiobotocore session; by default a shared one.
        check: Check the table when the store opens.

    Raises:
        ConfigurationError: ``table_name`` is not a table name.
    """

    def __init__(
        self,
        table_name: str,
        *,
        endpoint_url: str | None = None,
        region_name: str | None = None,
        session: Any = None,
        check: bool = True,
    ) -> None:
        if not isinstance(table_name, str) or not table_name.strip():
            raise ConfigurationError(
                f"table_name must be the name of a DynamoDB table, got {table_name!r}."
            )
        self.table_name = table_name
        self._endpoint_url = endpoint_url
        self._region_name = region_name
        self._session = session
        self._check = check
        self._client: Any = None
        self._stack: AsyncExitStack | None = None
        self._opened = 0
        self._lock = anyio.Lock()

    def __repr__(self) -> str:
        return f"DynamoDBStore({self.table_name!r})"

    # -- lifecycle --------------------------------------------------------------------

    async def __aenter__(self) -> Self:
        """Take the shared DynamoDB client (and check the table, the first time)."""
        async with self._lock:
            if self._opened == 0:
                stack = AsyncExitStack()
                try:
                    client = await stack.enter_async_context(
                        shared_client(
                            "dynamodb",
                            region_name=self._region_name,
                            endpoint_url=self._endpoint_url,
                            session=self._session,
                        )
                    )
                    if self._check:
                        await check_resource(
                            client,
                            "describe_table",
                            {"TableName": self.table_name},
                            what="idempotency table",
                            resource=self.table_name,
                            iam_action=_IAM_ACTIONS,
                        )
                except BaseException:
                    with anyio.CancelScope(shield=True), anyio.move_on_after(_CLOSE_TIMEOUT):
                        await stack.aclose()
                    raise
                self._client, self._stack = client, stack
            self._opened += 1
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Release the client once the last opener has left."""
        if self._opened == 0:
            return
        self._opened -= 1
        if self._opened == 0:
            stack, self._stack, self._client = self._stack, None, None
            if stack is not None:
                with anyio.CancelScope(shield=True), anyio.move_on_after(_CLOSE_TIMEOUT):
                    await stack.aclose()

    # -- the protocol -------------------------------------------------------------------

    async def claim(
        self, key: str, payload: Any, *, now: float, lease_until: float, validate: bool
    ) -> Claim:
        """Take ``key`` if it is free, else say who has it; see :mod:`eventflow.stores`."""
        item_id = self._item_id(key)
        fp = fingerprint(payload) if validate else None
        token = new_token()
        item: dict[str, Any] = {
            "id": {"S": item_id},
            "status": {"S": _IN_PROGRESS},
            "token": {"S": token},
            "lease_until": {"N": _number(lease_until)},
            "expires_at": {"N": _number(lease_until)},
            # an abandoned claim is free once its lease ends: TTL may delete it then
            "ttl": {"N": _ttl(lease_until)},
        }
        if fp is not None:
            item["fingerprint"] = {"S": fp}
        # the item in the way can vanish or go stale between the failed put and a read
        # (only when DynamoDB did not return it): then the put is tried again
        for _ in range(3):
            try:
                await self._call(
                    "put_item",
                    TableName=self.table_name,
                    Item=item,
                    ConditionExpression=_CLAIM_CONDITION,
                    ExpressionAttributeNames={"#s": "status"},
                    ExpressionAttributeValues={
                        ":completed": {"S": _COMPLETED},
                        ":inprog": {"S": _IN_PROGRESS},
                        ":now": {"N": _number(now)},
                    },
                    ReturnValuesOnConditionCheckFailure="ALL_OLD",
                )
            except ClientError as exc:
                if error_code(exc) != _CONDITION_FAILED:
                    raise  # pragma: no cover - _call translates every other error
                existing = exc.response.get("Item")
                if existing is None:
                    existing = await self._get(item_id)
                answer = self._answer(existing, now=now, fp=fp, validate=validate)
                if answer is not None:
                    return answer
                continue
            return Claim(ClaimStatus.CLAIMED, token=token)
        raise AWSError(
            f"The idempotency table {self.table_name} kept refusing PutItem for key {key!r} "
            "although its item looks free; the item may not have been written by eventflow."
        )

    async def complete(self, key: str, token: str, result: str, *, expires_at: float) -> None:
        """Record ``result`` for ``key`` if ``token`` still holds its claim."""
        _utf8(result, f"The result for idempotency key {key!r}")
        try:
            await self._call(
                "update_item",
                TableName=self.table_name,
                Key={"id": {"S": self._item_id(key)}},
                UpdateExpression="SET #s = :completed, #r = :r, expires_at = :e, #ttl = :ttl "
                "REMOVE #t",
                ConditionExpression="#t = :t",
                ExpressionAttributeNames={
                    "#s": "status",
                    "#r": "result",
                    "#t": "token",
                    "#ttl": "ttl",
                },
                ExpressionAttributeValues={
                    ":completed": {"S": _COMPLETED},
                    ":r": {"S": result},
                    ":e": {"N": _number(expires_at)},
                    ":ttl": {"N": _ttl(expires_at)},
                    ":t": {"S": token},
                },
            )
        except ClientError as exc:
            if error_code(exc) != _CONDITION_FAILED:
                raise  # pragma: no cover - _call translates every other error
            _log.warning(
                "idempotency.claim_lost",
                table=self.table_name,
                key=key,
                detail="the claim's lease ended and another attempt took the key over, "
                "so this result was not recorded",
            )

    async def release(self, key: str, token: str) -> None:
        """Drop the claim on ``key`` if ``token`` still holds it, so a retry runs."""
        try:
            await self._call(
                "delete_item",
                TableName=self.table_name,
                Key={"id": {"S": self._item_id(key)}},
                ConditionExpression="#t = :t AND #s = :inprog",
                ExpressionAttributeNames={"#s": "status", "#t": "token"},
                ExpressionAttributeValues={
                    ":t": {"S": token},
                    ":inprog": {"S": _IN_PROGRESS},
                },
            )
        except ClientError as exc:
            if error_code(exc) != _CONDITION_FAILED:
                raise  # pragma: no cover - _call translates every other error
            _log.debug("idempotency.release_skipped", table=self.table_name, key=key)

    # -- helpers --------------------------------------------------------------------------

    @staticmethod
    def _item_id(key: str) -> str:
        if not key:
            raise ValueError(
                "The idempotency key is empty, and DynamoDB refuses an empty partition key; "
                "give every event a non-empty key."
            )
        encoded = _utf8(key, f"The idempotency key {key!r}")
        if len(encoded) > _MAX_KEY_BYTES:
            return "sha256-key:" + hashlib.sha256(encoded).hexdigest()
        return key

    def _answer(
        self, existing: dict[str, Any] | None, *, now: float, fp: str | None, validate: bool
    ) -> Claim | None:
        """What a live item says, or None when the key is free after all."""
        if not existing:
            return None
        status = existing.get("status", {}).get("S")
        lease = float(existing.get("lease_until", {}).get("N", "0"))
        expires = float(existing.get("expires_at", {}).get("N", "0"))
        live = (status == _COMPLETED and expires > now) or (status == _IN_PROGRESS and lease > now)
        if not live:
            return None
        stored_fp = existing.get("fingerprint", {}).get("S")
        if validate and stored_fp is not None and stored_fp != fp:
            return Claim(ClaimStatus.CONFLICT)
        if status == _COMPLETED:
            return Claim(ClaimStatus.COMPLETED, result=existing.get("result", {}).get("S"))
        return Claim(ClaimStatus.IN_PROGRESS, lease_until=lease)

    async def _get(self, item_id: str) -> dict[str, Any] | None:
        got = await self._call(
            "get_item",
            TableName=self.table_name,
            Key={"id": {"S": item_id}},
            ConsistentRead=True,
        )
        item: dict[str, Any] | None = got.get("Item")
        return item

    async def _call(self, operation: str, **params: Any) -> dict[str, Any]:
        """Call DynamoDB; a failed condition is re-raised, any other failure is AWSError."""
        client = self._client
        if client is None:
            raise RuntimeError(
                f"{self!r} is not open. An App opens its idempotency stores when it starts, "
                "so use the store through a running app (inside 'async with app'), or open "
                "it yourself with 'async with store:'."
            )
        api = _api(operation)
        try:
            result: dict[str, Any] = await getattr(client, operation)(**params)
        except ClientError as exc:
            code = error_code(exc)
            if code == _CONDITION_FAILED:
                raise
            if code in _ACCESS:
                message = (
                    f"The idempotency table {self.table_name} cannot be used: {api} was denied "
                    f"({code}). Grant these credentials the IAM actions {_IAM_ACTIONS} on it."
                )
            elif code == "ResourceNotFoundException":
                message = (
                    f"The idempotency table {self.table_name} does not exist ({api} answered "
                    f"{code}); create it with DynamoDBStore.create_table or the AWS CLI."
                )
            else:
                message = f"The idempotency table {self.table_name} failed {api}: {code}: {exc}"
            raise AWSError(message) from exc
        except BotoCoreError as exc:
            raise AWSError(
                f"The idempotency table {self.table_name} is unreachable: {api} failed: {exc}. "
                "Check endpoint_url, region_name and the network."
            ) from exc
        return result

    # -- provisioning ---------------------------------------------------------------------

    @classmethod
    async def create_table(
        cls,
        table_name: str,
        *,
        endpoint_url: str | None = None,
        region_name: str | None = None,
        session: Any = None,
        billing_mode: str = "PAY_PER_REQUEST",
        ttl: bool = True,
    ) -> None:
        """Create the table this store needs, wait until it is ACTIVE, enable TTL on ``ttl``.

        Nothing happens to a table that exists already, except that TTL is enabled on it
        when it has none. The table has a string partition key ``id``; with
        ``billing_mode="PROVISIONED"`` it gets 5 read and 5 write capacity units.

        Args:
            table_name: The table's name.
            endpoint_url: The DynamoDB endpoint, for LocalStack or moto; None for AWS.
            region_name: The region; by default the standard AWS configuration.
            session: An aiobotocore session; by default a shared one.
            billing_mode: ``"PAY_PER_REQUEST"`` (on demand) or ``"PROVISIONED"``.
            ttl: Enable Time to Live on the ``ttl`` attribute, so expired records go away.

        Raises:
            AWSError: The table cannot be created, or does not become ACTIVE in 5 minutes.
        """
        params: dict[str, Any] = {
            "TableName": table_name,
            "AttributeDefinitions": [{"AttributeName": "id", "AttributeType": "S"}],
            "KeySchema": [{"AttributeName": "id", "KeyType": "HASH"}],
            "BillingMode": billing_mode,
        }
        if billing_mode == "PROVISIONED":
            params["ProvisionedThroughput"] = {"ReadCapacityUnits": 5, "WriteCapacityUnits": 5}
        async with shared_client(
            "dynamodb", region_name=region_name, endpoint_url=endpoint_url, session=session
        ) as client:
            try:
                try:
                    await client.create_table(**params)
                except ClientError as exc:
                    if error_code(exc) != "ResourceInUseException":
                        raise
                with anyio.fail_after(_CREATE_TIMEOUT):
                    delay = 0.2
                    while True:
                        described = await client.describe_table(TableName=table_name)
                        if described["Table"].get("TableStatus") == "ACTIVE":
                            break
                        await anyio.sleep(delay)
                        delay = min(delay * 2, 5.0)
                if ttl:
                    got = await client.describe_time_to_live(TableName=table_name)
                    current = got.get("TimeToLiveDescription", {})
                    if current.get("TimeToLiveStatus") in ("ENABLED", "ENABLING"):
                        if current.get("AttributeName") != "ttl":
                            _log.warning(
                                "idempotency.ttl_attribute",
                                table=table_name,
                                attribute=current.get("AttributeName"),
                                detail="the table's Time to Live is on another attribute, so "
                                "DynamoDB will not delete expired eventflow records",
                            )
                    else:
                        await client.update_time_to_live(
                            TableName=table_name,
                            TimeToLiveSpecification={"Enabled": True, "AttributeName": "ttl"},
                        )
            except TimeoutError as exc:
                raise AWSError(
                    f"The idempotency table {table_name} did not become ACTIVE within "
                    f"{_CREATE_TIMEOUT:.0f} seconds."
                ) from exc
            except (ClientError, BotoCoreError) as exc:
                code = error_code(exc) or type(exc).__name__
                raise AWSError(
                    f"The idempotency table {table_name} could not be created: {code}: {exc}"
                ) from exc
