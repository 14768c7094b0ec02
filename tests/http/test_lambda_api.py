"""LambdaAPI over a real socket: uvicorn on 127.0.0.1, boto3 and the AWS CLI as clients.

boto3 is synchronous, so every call runs in a worker thread (``anyio.to_thread``) while
the event loop keeps serving the API and running the App. Clients are built with
retries off and botocore's parameter validation off, so the server's own validation is
what the tests see.
"""

from __future__ import annotations

import base64
import datetime
import functools
import io
import json
import os
import sys
import uuid
from collections.abc import Awaitable, Callable, Iterator
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import boto3
import botocore.auth
import httpx
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials
from botocore.exceptions import ClientError
from structlog.testing import capture_logs

import eventflow
from eventflow.http import MAX_ASYNC_PAYLOAD_BYTES, MAX_SYNC_PAYLOAD_BYTES, LambdaAPI

REGION = "us-east-1"
ACCOUNT = "123456789012"
ARN = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:"
Serve = Callable[[Any], AbstractAsyncContextManager[str]]
Running = Callable[[eventflow.App, Any], Awaitable[str]]


async def call(fn: Callable[..., Any], /, **kwargs: Any) -> Any:
    """Run a blocking boto3 call in a worker thread; read a streamed ``Payload`` there too,
    so its connection goes back to the pool (and is closed with the client)."""

    def run() -> Any:
        result = fn(**kwargs)
        if isinstance(result, dict) and hasattr(result.get("Payload"), "read"):
            result["Payload"] = io.BytesIO(result["Payload"].read())
        return result

    return await anyio.to_thread.run_sync(run)


@pytest.fixture
def clients() -> Iterator[Callable[..., Any]]:
    """``clients(url, key=..., secret=..., token=...)``: a boto3 Lambda client, closed after."""
    made: list[Any] = []

    def make(
        url: str, key: str = "testing", secret: str = "testing", token: str | None = None
    ) -> Any:
        client = boto3.client(
            "lambda",
            endpoint_url=url,
            region_name=REGION,
            aws_access_key_id=key,
            aws_secret_access_key=secret,
            aws_session_token=token,
            config=Config(retries={"max_attempts": 0}, parameter_validation=False),
        )
        made.append(client)
        return client

    yield make
    for client in made:
        client.close()


def _aws_cli() -> str:
    exe = Path(sys.executable).with_name("aws")
    if not exe.exists():
        pytest.fail("The AWS CLI is not installed next to Python; pip install -e '.[dev]'.")
    return str(exe)


def _cli_v2() -> bool:
    try:
        import awscli  # type: ignore[import-untyped]
    except ImportError:
        return True  # not the pip-installed v1
    return not str(awscli.__version__).startswith("1.")


async def aws_cli(url: str, *args: str) -> dict[str, Any]:
    """Run ``aws <args> --endpoint-url url --region us-east-1``; its JSON output."""
    env = dict(os.environ)
    env.setdefault("AWS_ACCESS_KEY_ID", "testing")
    env.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
    extra = ["--endpoint-url", url, "--region", REGION, "--output", "json"]
    argv = list(args)
    if _cli_v2():
        extra.append("--no-cli-pager")
    else:  # v1 sends blobs raw and knows neither option
        if "--cli-binary-format" in argv:
            i = argv.index("--cli-binary-format")
            del argv[i : i + 2]
    result = await anyio.run_process([_aws_cli(), *argv, *extra], env=env, check=False)
    assert result.returncode == 0, result.stderr.decode()
    output: dict[str, Any] = json.loads(result.stdout)
    return output


async def wait_for(condition: Callable[[], bool], seconds: float = 10.0) -> None:
    with anyio.fail_after(seconds):
        while not condition():  # noqa: ASYNC110 - one condition, bounded
            await anyio.sleep(0.01)


def error_of(exc: pytest.ExceptionInfo[ClientError]) -> tuple[int, str, str]:
    response = exc.value.response
    return (
        response["ResponseMetadata"]["HTTPStatusCode"],
        response["Error"]["Code"],
        response["Error"]["Message"],
    )


# --------------------------------------------------------------------------- the served app


@dataclass
class Api:
    app: eventflow.App
    url: str
    handlers: dict[str, eventflow.Handler]
    request_ids: list[str] = field(default_factory=list)


@pytest.fixture
async def api(running: Running) -> Api:
    request_ids: list[str] = []

    async def echo(event: Any, context: eventflow.Context) -> Any:
        """Returns what it gets."""
        context.log.info("echoing", size=len(json.dumps(event)))
        request_ids.append(context.aws_request_id)
        return {"echo": event}

    async def fail(event: Any, context: eventflow.Context) -> Any:
        request_ids.append(context.aws_request_id)
        raise ValueError("boom")

    async def chatty(event: Any, context: eventflow.Context) -> None:
        for i in range(200):
            context.log.info(f"line {i:03d} " + "é" * 20)

    handlers = {
        "echo": eventflow.Handler(echo, name="echo", retry_delays=(0.1,)),
        "chatty": eventflow.Handler(chatty, name="chatty"),
        "fail": eventflow.Handler(fail, name="fail", max_retries=0, timeout=2.5),
    }
    app = eventflow.App(handlers=handlers.values(), account_id=ACCOUNT, shutdown_timeout=5)
    url = await running(app, LambdaAPI(app, account_id=ACCOUNT))
    return Api(app, url, handlers, request_ids)


# --------------------------------------------------------------------------- Invoke


async def test_cli_invoke_event_prints_202(serve: Serve, tmp_path: Path) -> None:
    received: list[Any] = []

    async def demo(event: Any, context: eventflow.Context) -> None:
        received.append(event)

    app = eventflow.App(handlers=[eventflow.Handler(demo, name="demo-lambda")])
    async with app, serve(LambdaAPI(app)) as url:
        out = await aws_cli(
            url,
            "lambda",
            "invoke",
            "--function-name",
            "demo-lambda",
            "--invocation-type",
            "Event",
            "--cli-binary-format",
            "raw-in-base64-out",
            "--payload",
            '{"key1":"value1"}',
            str(tmp_path / "out.json"),
        )
        await app.drain(timeout=5)
    assert out["StatusCode"] == 202
    assert received == [{"key1": "value1"}]


async def test_event_answers_202_with_the_events_request_id(api: Api, clients: Any) -> None:
    client = clients(api.url)
    response = await call(
        client.invoke, FunctionName="echo", InvocationType="Event", Payload=b'{"a": 1}'
    )
    await api.app.drain(timeout=5)
    headers = response["ResponseMetadata"]["HTTPHeaders"]
    assert response["StatusCode"] == 202
    assert response["Payload"].read() == b""
    assert api.request_ids == [headers["x-amzn-requestid"]]
    for name in ("x-amz-executed-version", "x-amz-function-error", "x-amz-log-result"):
        assert name not in headers


async def test_request_response_success(api: Api, clients: Any) -> None:
    client = clients(api.url)
    response = await call(client.invoke, FunctionName="echo", Payload=b'{"n": [1, 2]}')
    assert response["StatusCode"] == 200
    assert json.loads(response["Payload"].read()) == {"echo": {"n": [1, 2]}}
    assert response["ExecutedVersion"] == "$LATEST"
    assert "FunctionError" not in response
    assert "LogResult" not in response
    assert api.request_ids == [response["ResponseMetadata"]["RequestId"]]


async def test_request_response_function_error(api: Api, clients: Any) -> None:
    client = clients(api.url)
    response = await call(client.invoke, FunctionName="fail", Payload=b"{}")
    assert response["StatusCode"] == 200
    assert response["FunctionError"] == "Unhandled"
    error = json.loads(response["Payload"].read())
    assert error["errorMessage"] == "boom"
    assert error["errorType"] == "ValueError"
    assert error["requestId"] == response["ResponseMetadata"]["RequestId"]
    assert isinstance(error["stackTrace"], list)


async def test_log_type_tail_returns_the_attempts_log(api: Api, clients: Any) -> None:
    client = clients(api.url)
    response = await call(client.invoke, FunctionName="echo", Payload=b"{}", LogType="Tail")
    request_id = response["ResponseMetadata"]["RequestId"]
    log = base64.b64decode(response["LogResult"]).decode()
    assert f"START RequestId: {request_id} Version: $LATEST" in log
    assert "echoing" in log
    assert f"END RequestId: {request_id}" in log
    assert f"REPORT RequestId: {request_id}" in log


async def test_log_tail_is_the_last_4_kb(api: Api, clients: Any) -> None:
    response = await call(
        clients(api.url).invoke, FunctionName="chatty", Payload=b"{}", LogType="Tail"
    )
    request_id = response["ResponseMetadata"]["RequestId"]
    tail = base64.b64decode(response["LogResult"])
    assert len(tail) == 4096  # the whole log is ~10 KB
    text = tail.decode("utf-8", errors="replace")
    assert "START RequestId" not in text
    assert "line 199 " in text
    assert text.rstrip().splitlines()[-1].startswith(f"REPORT RequestId: {request_id}")


async def test_dry_run_answers_204_and_runs_nothing(api: Api, clients: Any) -> None:
    response = await call(
        clients(api.url).invoke, FunctionName="echo", InvocationType="DryRun", Payload=b"{}"
    )
    assert response["StatusCode"] == 204
    assert api.request_ids == []
    assert api.app.stats().received == 0


@pytest.mark.parametrize(
    "name",
    ["echo", f"{ACCOUNT}:function:echo", f"{ARN}echo", f"{ARN}echo:$LATEST"],
    ids=["name", "partial-arn", "full-arn", "qualified-arn"],
)
async def test_function_names_and_arns_are_accepted(api: Api, clients: Any, name: str) -> None:
    response = await call(clients(api.url).invoke, FunctionName=name, Payload=b"7")
    assert json.loads(response["Payload"].read()) == {"echo": 7}


@pytest.mark.parametrize(
    ("name", "qualifier", "why"),
    [
        ("nope", None, "Function not found: " + ARN + "nope."),
        ("arn:aws:lambda:eu-west-1:123456789012:function:echo", None, "serves region us-east-1"),
        ("999999999999:function:echo", None, "serves account 123456789012"),
        ("echo:1", None, "$LATEST only"),
        ("echo", "live", "$LATEST only"),
    ],
)
async def test_unknown_functions_are_resource_not_found(
    api: Api, clients: Any, name: str, qualifier: str | None, why: str
) -> None:
    extra = {"Qualifier": qualifier} if qualifier else {}
    with pytest.raises(ClientError) as exc:
        await call(clients(api.url).invoke, FunctionName=name, Payload=b"{}", **extra)
    status, code, message = error_of(exc)
    assert (status, code) == (404, "ResourceNotFoundException")
    assert why in message
    assert api.request_ids == []


async def test_body_that_is_not_json_is_invalid_request_content(api: Api, clients: Any) -> None:
    for invocation_type in ("Event", "RequestResponse"):
        with pytest.raises(ClientError) as exc:
            await call(
                clients(api.url).invoke,
                FunctionName="echo",
                InvocationType=invocation_type,
                Payload=b"{not json",
            )
        status, code, message = error_of(exc)
        assert (status, code) == (400, "InvalidRequestContentException")
        assert "Could not parse request body into json" in message
    assert api.request_ids == []


async def test_payload_size_limits(api: Api, clients: Any) -> None:
    client = clients(api.url)

    def string_of(size: int) -> bytes:  # a JSON string of exactly ``size`` bytes
        return b'"' + b"a" * (size - 2) + b'"'

    ok = await call(
        client.invoke,
        FunctionName="echo",
        InvocationType="Event",
        Payload=string_of(MAX_ASYNC_PAYLOAD_BYTES),
    )
    assert ok["StatusCode"] == 202
    with pytest.raises(ClientError) as exc:
        await call(
            client.invoke,
            FunctionName="echo",
            InvocationType="Event",
            Payload=string_of(MAX_ASYNC_PAYLOAD_BYTES + 1),
        )
    status, code, message = error_of(exc)
    assert (status, code) == (413, "RequestTooLargeException")
    assert str(MAX_ASYNC_PAYLOAD_BYTES) in message
    with pytest.raises(ClientError) as exc:
        await call(
            client.invoke, FunctionName="echo", Payload=string_of(MAX_SYNC_PAYLOAD_BYTES + 1)
        )
    assert error_of(exc)[:2] == (413, "RequestTooLargeException")
    await api.app.drain(timeout=5)
    assert len(api.request_ids) == 1


async def test_full_queue_answers_429_at_once(serve: Serve, clients: Any) -> None:
    release = anyio.Event()
    started: list[str] = []

    async def slow(event: Any, context: eventflow.Context) -> None:
        started.append(context.aws_request_id)
        await release.wait()

    app = eventflow.App(
        handlers=[eventflow.Handler(slow, name="slow")], queue_size=1, concurrency=1
    )
    async with app, serve(LambdaAPI(app)) as url:
        client = clients(url)
        try:
            invoke = functools.partial(
                call, client.invoke, FunctionName="slow", InvocationType="Event", Payload=b"{}"
            )
            assert (await invoke())["StatusCode"] == 202  # running
            await wait_for(lambda: len(started) == 1)
            assert (await invoke())["StatusCode"] == 202  # queued
            with pytest.raises(ClientError) as exc:
                await invoke()  # no room
            status, code, _ = error_of(exc)
            assert (status, code) == (429, "TooManyRequestsException")
            assert exc.value.response["Reason"] == "ConcurrentInvocationLimitExceeded"
            assert exc.value.response["ResponseMetadata"]["HTTPHeaders"]["retry-after"] == "1"
        finally:
            release.set()
        await app.drain(timeout=5)
    assert app.stats().received == 2


async def test_app_not_running_answers_503(serve: Serve) -> None:
    async def noop(event: Any, context: eventflow.Context) -> None:
        return None

    app = eventflow.App(handlers=[eventflow.Handler(noop, name="noop")])
    async with serve(LambdaAPI(app)) as url, httpx.AsyncClient(base_url=url) as http:
        response = await http.post(
            "/2015-03-31/functions/noop/invocations",
            content=b"{}",
            headers={"X-Amz-Invocation-Type": "Event"},
        )
    assert response.status_code == 503
    assert response.headers["x-amzn-errortype"] == "ServiceException"
    assert response.headers["retry-after"] == "1"
    assert "has not started" in response.json()["Message"]
    assert response.headers["x-amzn-requestid"]


async def test_unknown_route_and_bad_headers(api: Api) -> None:
    async with httpx.AsyncClient(base_url=api.url) as http:
        unknown = await http.get("/2015-03-31/nothing-here")
        wrong_method = await http.delete("/2015-03-31/functions/echo/invocations")
        bad_type = await http.post(
            "/2015-03-31/functions/echo/invocations",
            content=b"{}",
            headers={"X-Amz-Invocation-Type": "Later"},
        )
    for response in (unknown, wrong_method):
        assert response.status_code == 404
        assert response.headers["x-amzn-errortype"] == "UnknownOperationException"
        assert response.json()["Type"] == "User"
    assert bad_type.status_code == 400
    assert bad_type.headers["x-amzn-errortype"] == "InvalidParameterValueException"
    assert "X-Amz-Invocation-Type" in bad_type.json()["message"]
    assert api.request_ids == []


# --------------------------------------------------------------------------- configuration


async def test_event_invoke_config_round_trip(api: Api, clients: Any) -> None:
    client = clients(api.url)
    echo = api.handlers["echo"]
    with pytest.raises(ClientError) as exc:
        await call(client.get_function_event_invoke_config, FunctionName="echo")
    assert error_of(exc)[:2] == (404, "ResourceNotFoundException")

    put = await call(
        client.put_function_event_invoke_config,
        FunctionName="echo",
        MaximumRetryAttempts=1,
        MaximumEventAgeInSeconds=60,
    )
    assert put["FunctionArn"] == f"{ARN}echo:$LATEST"
    assert (put["MaximumRetryAttempts"], put["MaximumEventAgeInSeconds"]) == (1, 60)
    assert put["DestinationConfig"] == {"OnSuccess": {}, "OnFailure": {}}
    assert isinstance(put["LastModified"], datetime.datetime)
    config = api.app.handler_config(echo)
    assert (config.max_retries, config.max_event_age) == (1, 60.0)
    assert config.retry_delays == echo.config.retry_delays == (0.1,)

    got = await call(client.get_function_event_invoke_config, FunctionName=f"{ARN}echo")
    assert {k: got[k] for k in ("MaximumRetryAttempts", "MaximumEventAgeInSeconds")} == {
        "MaximumRetryAttempts": 1,
        "MaximumEventAgeInSeconds": 60,
    }

    updated = await call(
        client.update_function_event_invoke_config, FunctionName="echo", MaximumRetryAttempts=0
    )
    assert (updated["MaximumRetryAttempts"], updated["MaximumEventAgeInSeconds"]) == (0, 60)
    assert api.app.handler_config(echo).max_retries == 0

    listed = await call(client.list_function_event_invoke_configs, FunctionName="echo")
    assert [c["MaximumRetryAttempts"] for c in listed["FunctionEventInvokeConfigs"]] == [0]

    # Put replaces: what it leaves out falls back to the decorator's option
    replaced = await call(
        client.put_function_event_invoke_config, FunctionName="echo", MaximumRetryAttempts=2
    )
    assert "MaximumEventAgeInSeconds" not in replaced
    config = api.app.handler_config(echo)
    assert (config.max_retries, config.max_event_age) == (2, echo.config.max_event_age)

    deleted = await call(client.delete_function_event_invoke_config, FunctionName="echo")
    assert deleted["ResponseMetadata"]["HTTPStatusCode"] == 204
    assert api.app.handler_config(echo) == echo.config
    with pytest.raises(ClientError) as exc:
        await call(client.delete_function_event_invoke_config, FunctionName="echo")
    assert error_of(exc)[:2] == (404, "ResourceNotFoundException")
    listed = await call(client.list_function_event_invoke_configs, FunctionName="echo")
    assert listed["FunctionEventInvokeConfigs"] == []


@pytest.mark.parametrize(
    ("fields", "named"),
    [
        ({"MaximumRetryAttempts": 3}, "MaximumRetryAttempts must be an integer from 0 to 2"),
        ({"MaximumRetryAttempts": -1}, "MaximumRetryAttempts"),
        ({"MaximumEventAgeInSeconds": 59}, "MaximumEventAgeInSeconds must be an integer from 60"),
        ({"MaximumEventAgeInSeconds": 21601}, "21600"),
        (
            {"DestinationConfig": {"OnFailure": {"Destination": f"{ARN}other"}}},
            "DestinationConfig.OnFailure.Destination must be the ARN of an SQS queue",
        ),
        (
            {"DestinationConfig": {"OnSuccess": {"Destination": "not-an-arn"}}},
            "DestinationConfig.OnSuccess.Destination",
        ),
    ],
)
async def test_event_invoke_config_validation(
    api: Api, clients: Any, fields: dict[str, Any], named: str
) -> None:
    with pytest.raises(ClientError) as exc:
        await call(clients(api.url).put_function_event_invoke_config, FunctionName="echo", **fields)
    status, code, message = error_of(exc)
    assert (status, code) == (400, "InvalidParameterValueException")
    assert named in message
    assert api.app.handler_config("echo") == api.handlers["echo"].config


async def test_get_and_list_functions(api: Api, clients: Any) -> None:
    client = clients(api.url)
    function = await call(client.get_function, FunctionName="echo")
    config = function["Configuration"]
    assert config["FunctionName"] == "echo"
    assert config["FunctionArn"] == f"{ARN}echo"
    assert config["Handler"].endswith("api.<locals>.echo")
    assert config["Timeout"] == 900  # no timeout: Lambda's maximum
    assert config["Description"] == "Returns what it gets."
    assert (config["MemorySize"], config["Version"], config["State"]) == (128, "$LATEST", "Active")
    assert config["PackageType"] == "Zip"
    assert config["Runtime"].startswith("python3.")
    assert "DeadLetterConfig" not in config

    fail = await call(client.get_function_configuration, FunctionName=f"{ACCOUNT}:function:fail")
    assert fail["Timeout"] == 3  # 2.5 s, rounded up to whole seconds
    listed = await call(client.list_functions)
    assert [f["FunctionName"] for f in listed["Functions"]] == ["chatty", "echo", "fail"]


async def test_update_function_configuration(api: Api, clients: Any) -> None:
    client = clients(api.url)
    updated = await call(client.update_function_configuration, FunctionName="echo", Timeout=30)
    assert updated["Timeout"] == 30
    assert api.app.handler_config("echo").timeout == 30.0
    assert api.app.handler_config("echo").retry_delays == (0.1,)
    got = await call(client.get_function_configuration, FunctionName="echo")
    assert got["Timeout"] == 30

    for fields, named in [
        ({"MemorySize": 256}, "MemorySize"),
        ({"Timeout": 901}, "Timeout must be an integer number of seconds from 1 to 900"),
        ({"DeadLetterConfig": {"TargetArn": f"{ARN}other"}}, "SQS queue or an SNS topic"),
    ]:
        with pytest.raises(ClientError) as exc:
            await call(client.update_function_configuration, FunctionName="echo", **fields)
        status, code, message = error_of(exc)
        assert (status, code) == (400, "InvalidParameterValueException")
        assert named in message
    assert api.app.handler_config("echo").timeout == 30.0


# --------------------------------------------------------------------------- AWS targets


async def test_seed_scenario_dead_letter_through_the_cli(
    aws_on_moto: str, serve: Serve, clients: Any
) -> None:
    sqs = boto3.client("sqs", endpoint_url=aws_on_moto, region_name=REGION)
    try:
        queue_url = (await call(sqs.create_queue, QueueName=f"ef-{uuid.uuid4().hex[:10]}-dlq"))[
            "QueueUrl"
        ]
        attributes = await call(
            sqs.get_queue_attributes, QueueUrl=queue_url, AttributeNames=["QueueArn"]
        )
        queue_arn = attributes["Attributes"]["QueueArn"]
        attempts: list[tuple[str, int]] = []

        async def demo_lambda(event: Any, context: eventflow.Context) -> None:
            attempts.append((context.aws_request_id, context.attempt))
            raise Exception("Simulating error")

        handler = eventflow.Handler(demo_lambda, name="demo-lambda", retry_delays=(0.2, 0.4))
        event = {"key1": "value1", "key2": "value2", "key3": "value3"}
        with capture_logs() as logs:
            async with eventflow.App(handlers=[handler]) as app, serve(LambdaAPI(app)) as url:
                put = await aws_cli(
                    url,
                    "lambda",
                    "put-function-event-invoke-config",
                    "--function-name",
                    "demo-lambda",
                    "--maximum-retry-attempts",
                    "2",
                )
                assert put["MaximumRetryAttempts"] == 2
                updated = await aws_cli(
                    url,
                    "lambda",
                    "update-function-configuration",
                    "--function-name",
                    "demo-lambda",
                    "--dead-letter-config",
                    f"TargetArn={queue_arn}",
                )
                assert updated["DeadLetterConfig"] == {"TargetArn": queue_arn}
                response = await call(
                    clients(url).invoke,
                    FunctionName="demo-lambda",
                    InvocationType="Event",
                    Payload=json.dumps(event).encode(),
                )
                assert response["StatusCode"] == 202
                await wait_for(lambda: app.stats().dead_lettered == 1)
        request_id = response["ResponseMetadata"]["HTTPHeaders"]["x-amzn-requestid"]
        assert attempts == [(request_id, 1), (request_id, 2), (request_id, 3)]
        failed = [e for e in logs if e["event"] == "attempt.failed"]
        assert [(e["request_id"], e["attempt"]) for e in failed] == [
            (request_id, 1),
            (request_id, 2),
            (request_id, 3),
        ]
        received = await call(
            sqs.receive_message,
            QueueUrl=queue_url,
            MaxNumberOfMessages=10,
            MessageAttributeNames=["All"],
            WaitTimeSeconds=1,
        )
        messages = received["Messages"]
        assert len(messages) == 1
        assert json.loads(messages[0]["Body"]) == event
        attrs = messages[0]["MessageAttributes"]
        assert attrs["RequestID"] == {"StringValue": request_id, "DataType": "String"}
        assert attrs["ErrorCode"] == {"StringValue": "200", "DataType": "Number"}
        assert attrs["ErrorMessage"] == {"StringValue": "Simulating error", "DataType": "String"}
    finally:
        sqs.close()


async def test_on_failure_destination_and_unusable_targets(
    aws_on_moto: str, serve: Serve, clients: Any
) -> None:
    sqs = boto3.client("sqs", endpoint_url=aws_on_moto, region_name=REGION)
    try:
        queue_url = (await call(sqs.create_queue, QueueName=f"ef-{uuid.uuid4().hex[:10]}-dest"))[
            "QueueUrl"
        ]
        attributes = await call(
            sqs.get_queue_attributes, QueueUrl=queue_url, AttributeNames=["QueueArn"]
        )
        queue_arn = attributes["Attributes"]["QueueArn"]

        async def broken(event: Any, context: eventflow.Context) -> None:
            raise RuntimeError("still broken")

        handler = eventflow.Handler(broken, name="broken", retry_delays=(0.1,))
        async with eventflow.App(handlers=[handler]) as app, serve(LambdaAPI(app)) as url:
            client = clients(url)
            missing = queue_arn.rsplit(":", 1)[0] + ":no-such-queue"
            with pytest.raises(ClientError) as exc:
                await call(
                    client.put_function_event_invoke_config,
                    FunctionName="broken",
                    DestinationConfig={"OnFailure": {"Destination": missing}},
                )
            status, code, message = error_of(exc)
            assert (status, code) == (400, "InvalidParameterValueException")
            assert "no-such-queue" in message
            put = await call(
                client.put_function_event_invoke_config,
                FunctionName="broken",
                MaximumRetryAttempts=0,
                DestinationConfig={"OnFailure": {"Destination": queue_arn}},
            )
            assert put["DestinationConfig"] == {
                "OnSuccess": {},
                "OnFailure": {"Destination": queue_arn},
            }
            response = await call(
                client.invoke, FunctionName="broken", InvocationType="Event", Payload=b'{"x": 1}'
            )
            await wait_for(lambda: app.stats().failed == 1)
            await app.drain(timeout=5)
        request_id = response["ResponseMetadata"]["RequestId"]
        received = await call(
            sqs.receive_message, QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1
        )
        (message_,) = received["Messages"]
        record = json.loads(message_["Body"])
        assert record["requestContext"]["requestId"] == request_id
        assert record["requestContext"]["condition"] == "RetriesExhausted"
        assert record["requestContext"]["approximateInvokeCount"] == 1
        assert record["requestPayload"] == {"x": 1}
        assert app.stats().attempts == 1
    finally:
        sqs.close()


async def test_a_target_that_failed_its_check_is_checked_again(
    aws_on_moto: str, serve: Serve, clients: Any
) -> None:
    sns = boto3.client("sns", endpoint_url=aws_on_moto, region_name=REGION)
    sqs = boto3.client("sqs", endpoint_url=aws_on_moto, region_name=REGION)
    try:
        name = f"ef-{uuid.uuid4().hex[:10]}-later"
        topic_arn = f"arn:aws:sns:{REGION}:{ACCOUNT}:{name}"

        async def broken(event: Any, context: eventflow.Context) -> None:
            raise RuntimeError("still broken")

        handler = eventflow.Handler(broken, name="broken", max_retries=0)
        async with eventflow.App(handlers=[handler]) as app, serve(LambdaAPI(app)) as url:
            client = clients(url)

            async def put() -> Any:
                return await call(
                    client.put_function_event_invoke_config,
                    FunctionName="broken",
                    DestinationConfig={"OnFailure": {"Destination": topic_arn}},
                )

            # Given a destination topic that does not exist yet: refused, twice
            for _ in range(2):
                with pytest.raises(ClientError) as exc:
                    await put()
                status, code, message = error_of(exc)
                assert (status, code) == (400, "InvalidParameterValueException")
                assert name in message
            # When the topic is created, the same Put is accepted and records reach it
            created = await call(sns.create_topic, Name=name)
            assert created["TopicArn"] == topic_arn
            queue_url = (await call(sqs.create_queue, QueueName=name))["QueueUrl"]
            queue_arn = (
                await call(
                    sqs.get_queue_attributes, QueueUrl=queue_url, AttributeNames=["QueueArn"]
                )
            )["Attributes"]["QueueArn"]
            await call(sns.subscribe, TopicArn=topic_arn, Protocol="sqs", Endpoint=queue_arn)
            await put()
            await call(client.invoke, FunctionName="broken", InvocationType="Event", Payload=b"1")
            await wait_for(lambda: app.stats().failed == 1)
            await app.drain(timeout=5)
            assert app.stats().destination_errors == 0
        received = await call(
            sqs.receive_message, QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1
        )
        (delivered,) = received["Messages"]
        record = json.loads(json.loads(delivered["Body"])["Message"])
        assert record["requestContext"]["condition"] == "RetriesExhausted"
    finally:
        sns.close()
        sqs.close()


# --------------------------------------------------------------------------- signatures


@dataclass
class Signed:
    app: eventflow.App
    url: str
    ran: list[Any]


@pytest.fixture
async def signed(running: Running) -> Signed:
    ran: list[Any] = []

    async def guarded(event: Any, context: eventflow.Context) -> Any:
        ran.append(event)
        return event

    app = eventflow.App(handlers=[eventflow.Handler(guarded, name="guarded")])
    url = await running(app, LambdaAPI(app, credentials=("AKIDEXAMPLE", "secret")))
    return Signed(app, url, ran)


async def test_signed_requests_pass(signed: Signed, clients: Any) -> None:
    client = clients(signed.url, key="AKIDEXAMPLE", secret="secret")
    response = await call(client.invoke, FunctionName="guarded", Payload=b'{"ok": true}')
    assert json.loads(response["Payload"].read()) == {"ok": True}
    function = await call(client.get_function, FunctionName="guarded")
    assert function["Configuration"]["FunctionName"] == "guarded"
    assert signed.ran == [{"ok": True}]


async def test_botocore_credentials_with_a_session_token(serve: Serve, clients: Any) -> None:
    async def guarded(event: Any, context: eventflow.Context) -> Any:
        return event

    app = eventflow.App(handlers=[eventflow.Handler(guarded, name="guarded")])
    api = LambdaAPI(app, credentials=Credentials("AKIDEXAMPLE", "secret", "token-1"))
    async with app, serve(api) as url:
        good = clients(url, key="AKIDEXAMPLE", secret="secret", token="token-1")
        response = await call(good.invoke, FunctionName="guarded", Payload=b"1")
        assert json.loads(response["Payload"].read()) == 1
        bad = clients(url, key="AKIDEXAMPLE", secret="secret", token="token-2")
        with pytest.raises(ClientError) as exc:
            await call(bad.invoke, FunctionName="guarded", Payload=b"1")
        assert error_of(exc)[:2] == (403, "UnrecognizedClientException")


@pytest.mark.parametrize(
    ("key", "secret", "code"),
    [
        ("AKIDEXAMPLE", "wrong", "InvalidSignatureException"),
        ("AKIDOTHER", "secret", "UnrecognizedClientException"),
    ],
)
async def test_wrong_credentials_are_refused(
    signed: Signed, clients: Any, key: str, secret: str, code: str
) -> None:
    client = clients(signed.url, key=key, secret=secret)
    with pytest.raises(ClientError) as exc:
        await call(client.invoke, FunctionName="guarded", InvocationType="Event", Payload=b"{}")
    assert error_of(exc)[:2] == (403, code)
    assert signed.ran == []
    assert signed.app.stats().received == 0


async def test_stale_signature_is_refused(
    signed: Signed, clients: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = botocore.auth.get_current_datetime

    def ten_minutes_ago(remove_tzinfo: bool = True) -> datetime.datetime:
        return real(remove_tzinfo) - datetime.timedelta(minutes=10)

    monkeypatch.setattr(botocore.auth, "get_current_datetime", ten_minutes_ago)
    client = clients(signed.url, key="AKIDEXAMPLE", secret="secret")
    with pytest.raises(ClientError) as exc:
        await call(client.invoke, FunctionName="guarded", Payload=b"{}")
    status, code, message = error_of(exc)
    assert (status, code) == (403, "InvalidSignatureException")
    assert "Signature expired" in message
    assert signed.ran == []


async def test_tampered_body_and_missing_signature_are_refused(signed: Signed) -> None:
    url = f"{signed.url}/2015-03-31/functions/guarded/invocations"
    request = AWSRequest(
        method="POST",
        url=url,
        data=b'{"amount": 1}',
        headers={"X-Amz-Invocation-Type": "RequestResponse"},
    )
    SigV4Auth(Credentials("AKIDEXAMPLE", "secret"), "lambda", REGION).add_auth(request)
    headers = dict(request.headers.items())
    async with httpx.AsyncClient() as http:
        tampered = await http.post(url, content=b'{"amount": 1000}', headers=headers)
        unsigned = await http.post(url, content=b'{"amount": 1}')
        assert signed.ran == []
        genuine = await http.post(url, content=b'{"amount": 1}', headers=headers)
    assert tampered.status_code == 403
    assert tampered.headers["x-amzn-errortype"] == "InvalidSignatureException"
    assert "signature we calculated does not match" in tampered.json()["message"]
    assert unsigned.status_code == 403
    assert unsigned.headers["x-amzn-errortype"] == "MissingAuthenticationTokenException"
    assert genuine.status_code == 200  # the same signed request, untampered, passes
    assert signed.ran == [{"amount": 1}]
