"""Lambda API details a boto3 user meets: ListFunctions paging, ClientContext, the Python
runtime's log tail and the handler's own stack trace; over a real socket with botocore."""

from __future__ import annotations

import base64
import io
import json
import math
import re
import resource
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import anyio
import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

import eventflow
from eventflow.http import LambdaAPI

Running = Callable[[eventflow.App, Any], Awaitable[str]]
NAMES = [f"fn-{i:02d}" for i in range(7)]


async def call(fn: Callable[..., Any], /, **kwargs: Any) -> Any:
    def run() -> Any:
        result = fn(**kwargs)
        if isinstance(result, dict) and hasattr(result.get("Payload"), "read"):
            result["Payload"] = io.BytesIO(result["Payload"].read())
        return result

    return await anyio.to_thread.run_sync(run)


def whoami(event: Any, context: eventflow.Context) -> Any:
    cc = context.client_context
    if cc is None:
        return None
    title = cc.client.app_title if cc.client is not None else None
    return {"custom": cc.custom, "env": cc.env, "app_title": title}


def plain_fail(event: Any, context: eventflow.Context) -> Any:
    raise ValueError("boom")


@pytest.fixture
def client_of() -> Iterator[Callable[[str], Any]]:
    made: list[Any] = []

    def make(url: str) -> Any:
        client = boto3.client(
            "lambda",
            endpoint_url=url,
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
            config=Config(retries={"max_attempts": 0}, parameter_validation=False),
        )
        made.append(client)
        return client

    yield make
    for client in made:
        client.close()


@pytest.fixture
async def client(running: Running, client_of: Callable[[str], Any]) -> Any:
    handlers = [eventflow.Handler(whoami, name="whoami")]
    handlers.append(eventflow.Handler(plain_fail, name="plain-fail", max_retries=0))
    handlers += [eventflow.Handler(whoami, name=name) for name in NAMES]
    app = eventflow.App(handlers=handlers, shutdown_timeout=5)
    return client_of(await running(app, LambdaAPI(app)))


async def test_list_functions_honours_max_items_and_marker(client: Any) -> None:
    everything = sorted([*NAMES, "plain-fail", "whoami"])
    first = await call(client.list_functions, MaxItems=3)
    assert [f["FunctionName"] for f in first["Functions"]] == everything[:3]
    second = await call(client.list_functions, MaxItems=3, Marker=first["NextMarker"])
    assert [f["FunctionName"] for f in second["Functions"]] == everything[3:6]
    # botocore's paginator follows NextMarker to the end
    pages = client.get_paginator("list_functions").paginate(PaginationConfig={"PageSize": 2})
    listed = await anyio.to_thread.run_sync(
        lambda: [f["FunctionName"] for page in pages for f in page["Functions"]]
    )
    assert listed == everything
    whole = await call(client.list_functions)
    assert len(whole["Functions"]) == len(everything) and "NextMarker" not in whole
    with pytest.raises(ClientError) as bad:
        await call(client.list_functions, MaxItems=0)
    assert bad.value.response["Error"]["Code"] == "InvalidParameterValueException"


async def test_client_context_reaches_the_handler(client: Any) -> None:
    sent = {"custom": {"tenant": "acme"}, "env": {"locale": "fr"}, "client": {"app_title": "t"}}
    encoded = base64.b64encode(json.dumps(sent).encode()).decode()
    answer = await call(client.invoke, FunctionName="whoami", ClientContext=encoded, Payload=b"{}")
    assert json.loads(answer["Payload"].read()) == {
        "custom": {"tenant": "acme"},
        "env": {"locale": "fr"},
        "app_title": "t",
    }
    none = await call(client.invoke, FunctionName="whoami", Payload=b"{}")
    assert json.loads(none["Payload"].read()) is None
    with pytest.raises(ClientError) as bad:
        await call(client.invoke, FunctionName="whoami", ClientContext="not base64!", Payload=b"{}")
    assert bad.value.response["Error"]["Code"] == "InvalidRequestContentException"


async def test_log_tail_and_stack_trace_are_the_python_runtimes(client: Any) -> None:
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    answer = await call(client.invoke, FunctionName="plain-fail", Payload=b"{}", LogType="Tail")
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    request_id = answer["ResponseMetadata"]["RequestId"]
    # the stack trace starts at the handler's frame: none of anyio's or the thread pool's
    error = json.loads(answer["Payload"].read())
    trace = error["stackTrace"]
    assert trace[0].startswith(f'  File "{__file__}", line ') and "in plain_fail" in trace[0]
    assert not any("anyio" in frame or "threading" in frame for frame in trace)
    lines = base64.b64decode(answer["LogResult"]).decode().split("\n")
    assert lines[0] == f"START RequestId: {request_id} Version: $LATEST"
    assert lines[1:3] == ["[ERROR] ValueError: boom", "Traceback (most recent call last):"]
    assert lines[3].startswith('\u00a0\u00a0File "') and "in plain_fail" in lines[3]
    assert lines[-2] == f"END RequestId: {request_id}"
    report = re.fullmatch(
        rf"REPORT RequestId: {request_id}\tDuration: \d+\.\d\d ms\tBilled Duration: \d+ ms\t"
        r"Memory Size: 128 MB\tMax Memory Used: (\d+) MB\t",
        lines[-1],
    )
    assert report is not None, lines[-1]
    # the process's real peak (this test's process serves the API), in MB
    assert math.ceil(before / 1024) <= int(report[1]) <= math.ceil(after / 1024)
