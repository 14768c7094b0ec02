"""DynamoDBStore against the moto server, over HTTP: the store contract and the core."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiobotocore.session import AioSession

import eventflow
from eventflow.aws import AWSError, ResourceCheckFailed
from eventflow.aws._dynamodb_store import DynamoDBStore
from eventflow.stores import ClaimStatus, IdempotencyStore
from eventflow.testing import check_store

REGION = "us-east-1"


@pytest.fixture
async def ddb(moto_endpoint: str, aio_session: AioSession) -> AsyncIterator[Any]:
    async with aio_session.create_client(
        "dynamodb", region_name=REGION, endpoint_url=moto_endpoint
    ) as client:
        yield client


@pytest.fixture
async def table(moto_endpoint: str, unique_name: str) -> str:
    await DynamoDBStore.create_table(unique_name, endpoint_url=moto_endpoint)
    return unique_name


@pytest.fixture
async def store(moto_endpoint: str, table: str) -> AsyncIterator[DynamoDBStore]:
    async with DynamoDBStore(table, endpoint_url=moto_endpoint) as s:
        yield s


async def test_create_table_makes_the_schema_and_ttl_and_is_idempotent(
    moto_endpoint: str, unique_name: str, ddb: Any
) -> None:
    await DynamoDBStore.create_table(unique_name, endpoint_url=moto_endpoint)
    await DynamoDBStore.create_table(unique_name, endpoint_url=moto_endpoint)  # no error
    table = (await ddb.describe_table(TableName=unique_name))["Table"]
    assert table["TableStatus"] == "ACTIVE"
    assert table["KeySchema"] == [{"AttributeName": "id", "KeyType": "HASH"}]
    assert table["AttributeDefinitions"] == [{"AttributeName": "id", "AttributeType": "S"}]
    assert table["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
    ttl = (await ddb.describe_time_to_live(TableName=unique_name))["TimeToLiveDescription"]
    assert ttl["TimeToLiveStatus"] == "ENABLED"
    assert ttl["AttributeName"] == "ttl"


async def test_the_store_follows_the_protocol(store: DynamoDBStore) -> None:
    assert isinstance(store, IdempotencyStore)
    assert repr(store).startswith("DynamoDBStore(")


async def test_the_store_passes_the_store_kit(moto_endpoint: str, unique_name: str) -> None:
    async def fresh() -> DynamoDBStore:
        await DynamoDBStore.create_table(unique_name, endpoint_url=moto_endpoint)
        return DynamoDBStore(unique_name, endpoint_url=moto_endpoint)

    await check_store(fresh)


async def test_claim_duplicate_takeover_complete_expire(store: DynamoDBStore, ddb: Any) -> None:
    payload = {"id": 1, "amount": 5}
    first = await store.claim("k", payload, now=1000.0, lease_until=1060.0, validate=True)
    assert first.status is ClaimStatus.CLAIMED and first.token

    item = (await ddb.get_item(TableName=store.table_name, Key={"id": {"S": "k"}}))["Item"]
    assert item["status"] == {"S": "IN_PROGRESS"}
    assert item["token"] == {"S": first.token}
    assert item["lease_until"] == {"N": "1060.0"}
    assert len(item["fingerprint"]["S"]) == 64

    busy = await store.claim("k", payload, now=1010.0, lease_until=1070.0, validate=True)
    assert busy.status is ClaimStatus.IN_PROGRESS and busy.lease_until == 1060.0

    # the lease ended: another attempt takes the key over with a new token
    taken = await store.claim("k", payload, now=1061.0, lease_until=1121.0, validate=True)
    assert taken.status is ClaimStatus.CLAIMED
    assert taken.token and taken.token != first.token

    # the first holder finishes late: its result is not recorded, and nothing raises
    await store.complete("k", first.token, '"stale"', expires_at=5000.0)
    # nor may it release the new holder's claim
    await store.release("k", first.token)
    still = await store.claim("k", payload, now=1070.0, lease_until=1130.0, validate=True)
    assert still.status is ClaimStatus.IN_PROGRESS and still.lease_until == 1121.0

    await store.complete("k", taken.token, '{"ok": true}', expires_at=4661.0)
    item = (await ddb.get_item(TableName=store.table_name, Key={"id": {"S": "k"}}))["Item"]
    assert item["status"] == {"S": "COMPLETED"}
    assert "token" not in item
    assert item["ttl"] == {"N": "4661"}
    assert item["expires_at"] == {"N": "4661.0"}

    done = await store.claim("k", payload, now=1100.0, lease_until=1160.0, validate=True)
    assert done.status is ClaimStatus.COMPLETED and done.result == '{"ok": true}'

    # a release after completion leaves the result alone
    await store.release("k", taken.token)
    again = await store.claim("k", payload, now=1200.0, lease_until=1260.0, validate=True)
    assert again.status is ClaimStatus.COMPLETED

    # the result expired: the key is free again
    later = await store.claim("k", payload, now=4661.0, lease_until=4721.0, validate=True)
    assert later.status is ClaimStatus.CLAIMED and later.token not in (first.token, taken.token)


async def test_conflict_only_when_validating(store: DynamoDBStore) -> None:
    c = await store.claim("order-7", {"n": 1}, now=1000.0, lease_until=1060.0, validate=True)
    assert c.token is not None
    # in progress, different payload
    clash = await store.claim("order-7", {"n": 2}, now=1001.0, lease_until=1061.0, validate=True)
    assert clash.status is ClaimStatus.CONFLICT
    await store.complete("order-7", c.token, "42", expires_at=2000.0)
    # key order does not matter: the fingerprint is of canonical JSON
    same = await store.claim("order-7", {"n": 1}, now=1002.0, lease_until=1062.0, validate=True)
    assert same.status is ClaimStatus.COMPLETED and same.result == "42"
    clash = await store.claim("order-7", {"n": 2}, now=1003.0, lease_until=1063.0, validate=True)
    assert clash.status is ClaimStatus.CONFLICT
    loose = await store.claim("order-7", {"n": 2}, now=1004.0, lease_until=1064.0, validate=False)
    assert loose.status is ClaimStatus.COMPLETED and loose.result == "42"


async def test_a_claim_made_without_validation_never_conflicts(store: DynamoDBStore) -> None:
    c = await store.claim("free", {"n": 1}, now=1000.0, lease_until=1060.0, validate=False)
    assert c.status is ClaimStatus.CLAIMED
    other = await store.claim("free", {"n": 2}, now=1001.0, lease_until=1061.0, validate=True)
    assert other.status is ClaimStatus.IN_PROGRESS


async def test_release_frees_the_key(store: DynamoDBStore, ddb: Any) -> None:
    c = await store.claim("r", 1, now=1000.0, lease_until=1060.0, validate=True)
    assert c.token is not None
    await store.release("r", "not-the-token")  # ignored
    assert (await store.claim("r", 1, now=1001.0, lease_until=1061.0, validate=True)).status is (
        ClaimStatus.IN_PROGRESS
    )
    await store.release("r", c.token)
    got = await ddb.get_item(TableName=store.table_name, Key={"id": {"S": "r"}})
    assert "Item" not in got
    again = await store.claim("r", 1, now=1002.0, lease_until=1062.0, validate=True)
    assert again.status is ClaimStatus.CLAIMED


async def test_long_keys_are_hashed_and_empty_keys_refused(store: DynamoDBStore) -> None:
    key = "x" * 5000
    c = await store.claim(key, 1, now=1000.0, lease_until=1060.0, validate=True)
    assert c.status is ClaimStatus.CLAIMED and c.token
    await store.complete(key, c.token, "1", expires_at=2000.0)
    done = await store.claim(key, 1, now=1001.0, lease_until=1061.0, validate=True)
    assert done.status is ClaimStatus.COMPLETED
    with pytest.raises(ValueError, match="empty"):
        await store.claim("", 1, now=1000.0, lease_until=1060.0, validate=True)


async def test_concurrent_claims_take_each_key_once(store: DynamoDBStore) -> None:
    now = time.time()
    claims = await asyncio.gather(
        *(
            store.claim(
                f"key-{i % 20}", {"i": i % 20}, now=now, lease_until=now + 60, validate=True
            )
            for i in range(200)
        )
    )
    statuses = Counter(c.status for c in claims)
    assert statuses == {ClaimStatus.CLAIMED: 20, ClaimStatus.IN_PROGRESS: 180}
    winners = {f"key-{i % 20}" for i, c in enumerate(claims) if c.status is ClaimStatus.CLAIMED}
    assert len(winners) == 20


async def test_end_to_end_each_key_runs_once(moto_endpoint: str, table: str) -> None:
    runs: Counter[int] = Counter()

    @eventflow.handler(
        idempotency=eventflow.Idempotency(
            store=DynamoDBStore(table, endpoint_url=moto_endpoint), key="id"
        )
    )
    async def work(event: dict[str, Any], context: Any) -> dict[str, Any]:
        runs[event["id"]] += 1
        await asyncio.sleep(0.01)
        return {"done": event["id"]}

    app = eventflow.App(handlers=[work], concurrency=50)
    started = time.perf_counter()
    async with app:
        # ten invocations of each key, all at once: the claims race on every key
        await asyncio.gather(*(app.invoke(work, {"id": k % 30}) for k in range(300)))
        await app.drain()
        stats = app.stats()
    elapsed = time.perf_counter() - started
    assert sum(runs.values()) == 30
    assert set(runs) == set(range(30)) and set(runs.values()) == {1}
    assert stats.deduplicated == 270
    print(f"end to end: 300 invocations, 30 keys in {elapsed:.2f} s")


async def test_missing_table_fails_app_start(moto_endpoint: str, unique_name: str) -> None:
    @eventflow.handler(
        idempotency=eventflow.Idempotency(
            store=DynamoDBStore(unique_name, endpoint_url=moto_endpoint), key="id"
        )
    )
    async def work(event: Any, context: Any) -> None:
        return None

    with pytest.raises(ResourceCheckFailed, match=unique_name) as caught:
        async with eventflow.App(handlers=[work]):
            pass
    assert caught.value.resource == unique_name
    assert caught.value.operation == "DescribeTable"


async def test_missing_table_without_check_raises_aws_error(
    moto_endpoint: str, unique_name: str
) -> None:
    async with DynamoDBStore(unique_name, endpoint_url=moto_endpoint, check=False) as store:
        with pytest.raises(AWSError, match=f"{unique_name}.*PutItem"):
            await store.claim("k", 1, now=1000.0, lease_until=1060.0, validate=True)


async def test_unreachable_endpoint_raises_aws_error(table: str) -> None:
    store = DynamoDBStore(table, endpoint_url="http://127.0.0.1:9", check=False)
    async with store:
        with pytest.raises(AWSError, match=f"{table} is unreachable: PutItem"):
            await store.claim("k", 1, now=1000.0, lease_until=1060.0, validate=True)


async def test_a_store_that_is_not_open_says_so(table: str) -> None:
    with pytest.raises(RuntimeError, match="not open"):
        await DynamoDBStore(table).claim("k", 1, now=1.0, lease_until=2.0, validate=True)


async def test_unencodable_claims_fail_alone_and_the_store_goes_on(store: DynamoDBStore) -> None:
    # a lone surrogate is valid JSON that UTF-8 cannot encode: neither a fingerprint nor
    # DynamoDB can take it, so each such call fails with a clear error and nothing else
    lone = "\ud800"
    results = await asyncio.gather(
        store.claim("bad-payload", {"s": lone}, now=1000.0, lease_until=1060.0, validate=True),
        store.claim("bad-key-" + lone, {"n": 1}, now=1000.0, lease_until=1060.0, validate=False),
        store.claim("good", {"n": 2}, now=1000.0, lease_until=1060.0, validate=True),
        return_exceptions=True,
    )
    bad_payload, bad_key, good = results
    assert isinstance(bad_payload, eventflow.InvalidPayload)
    assert "lone surrogate" in str(bad_payload)
    assert isinstance(bad_key, eventflow.InvalidPayload)
    assert "lone surrogate" in str(bad_key) and "bad-key-" in str(bad_key)
    assert isinstance(good, eventflow.stores.Claim) and good.status is ClaimStatus.CLAIMED
    assert good.token is not None
    with pytest.raises(eventflow.InvalidPayload, match="lone surrogate"):
        await store.complete("good", good.token, '"' + lone + '"', expires_at=2000.0)
    await store.complete("good", good.token, '"ok"', expires_at=2000.0)
    again = await store.claim("good", {"n": 2}, now=1001.0, lease_until=1061.0, validate=True)
    assert (again.status, again.result) == (ClaimStatus.COMPLETED, '"ok"')
