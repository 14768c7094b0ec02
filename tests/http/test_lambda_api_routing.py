"""LambdaAPI's operation table, the App's region and account in its ARNs, and the AWS error
map's messages for unusable targets; over a real socket."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import boto3
import httpx
import pytest

import eventflow
from eventflow.http import LambdaAPI

Running = Callable[[eventflow.App, Any], Awaitable[str]]
ACCOUNT = "123456789012"


async def noop(event: Any, context: eventflow.Context) -> None:
    return None


def _app(**options: Any) -> eventflow.App:
    return eventflow.App(handlers=[eventflow.Handler(noop, name="noop")], **options)


# every (method, path) the docstring lists, with the status its operation answers here
SERVED = [
    ("POST", "/2015-03-31/functions/noop/invocations", 200),
    ("GET", "/2015-03-31/functions", 200),
    ("GET", "/2015-03-31/functions/", 200),
    ("GET", "/2015-03-31/functions/noop", 200),
    ("GET", "/2015-03-31/functions/noop/", 200),
    ("GET", "/2015-03-31/functions/noop/configuration", 200),
    ("PUT", "/2015-03-31/functions/noop/configuration", 200),
    ("GET", "/2019-09-25/functions/noop/event-invoke-config", 404),  # none set: Resource...
    ("PUT", "/2019-09-25/functions/noop/event-invoke-config", 200),
    ("POST", "/2019-09-25/functions/noop/event-invoke-config", 200),
    ("GET", "/2019-09-25/functions/noop/event-invoke-config/list", 200),
    ("DELETE", "/2019-09-25/functions/noop/event-invoke-config", 204),
]
# near misses: a served path with another method, or a path with a segment more or less
UNKNOWN = [
    ("PUT", "/2015-03-31/functions/noop/invocations"),
    ("GET", "/2015-03-31/functions/noop/invocations"),
    ("POST", "/2015-03-31/functions/"),
    ("DELETE", "/2015-03-31/functions/noop"),
    ("GET", "/2015-03-31/functions/noop/invocations/"),
    ("GET", "/2015-03-31/functionsnoop"),
    ("POST", "/2015-03-31/functions/noop/configuration"),
    ("GET", "/2019-09-25/functions/noop"),
    ("POST", "/2019-09-25/functions/noop/event-invoke-config/list"),
    ("GET", "/2019-09-25/functions/noop/event-invoke-config/other"),
    ("HEAD", "/2015-03-31/functions/noop"),
]


async def test_each_operation_is_found_by_method_and_path(running: Running) -> None:
    app = _app()
    url = await running(app, LambdaAPI(app))
    async with httpx.AsyncClient(base_url=url) as http:
        for method, path, status in SERVED:
            response = await http.request(method, path, content=b"{}")
            assert response.status_code == status, (method, path, response.text)
            assert response.headers.get("x-amzn-errortype") in (None, "ResourceNotFoundException")
        for method, path in UNKNOWN:
            response = await http.request(method, path, content=b"{}")
            assert response.status_code == 404, (method, path)
            assert response.headers["x-amzn-errortype"] == "UnknownOperationException"
            if method != "HEAD":
                assert f"No Lambda operation matches {method} {path}" in response.json()["message"]


async def test_function_arns_carry_the_apps_region_and_account(running: Running) -> None:
    app = _app(region="eu-west-1", account_id=ACCOUNT)
    url = await running(app, LambdaAPI(app))
    own = f"arn:aws:lambda:eu-west-1:{ACCOUNT}:function:noop"
    async with httpx.AsyncClient(base_url=url) as http:
        config = (await http.get("/2015-03-31/functions/noop/configuration")).json()
        assert config["FunctionArn"] == own
        assert (await http.get(f"/2015-03-31/functions/{own}")).status_code == 200
        other = own.replace("eu-west-1", "us-east-1")
        assert (await http.get(f"/2015-03-31/functions/{other}")).status_code == 404


async def test_a_region_and_account_given_to_the_api_override_the_apps(running: Running) -> None:
    app = _app(region="eu-west-1", account_id=ACCOUNT)
    api = LambdaAPI(app, region="ap-south-1", account_id="210987654321")
    url = await running(app, api)
    assert (api.region, api.account_id) == ("ap-south-1", "210987654321")
    async with httpx.AsyncClient(base_url=url) as http:
        config = (await http.get("/2015-03-31/functions/noop/configuration")).json()
    assert config["FunctionArn"] == "arn:aws:lambda:ap-south-1:210987654321:function:noop"


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("arn:aws:sqs:us-east-1:{account}:{name}", "does not exist"),
        ("arn:aws:s3:::{name}", "must be the ARN of an SQS queue"),
        ("arn:aws:events:us-east-1:{account}:rule/{name}", "must be an EventBridge bus ARN"),
    ],
)
async def test_an_unusable_destination_is_refused_with_the_adapters_message(
    aws_on_moto: str, running: Running, target: str, expected: str
) -> None:
    sts = boto3.client("sts", endpoint_url=aws_on_moto, region_name="us-east-1")
    account = sts.get_caller_identity()["Account"]
    sts.close()
    arn = target.format(account=account, name=f"ef-{uuid.uuid4().hex[:10]}-missing")
    app = _app()
    url = await running(app, LambdaAPI(app))
    async with httpx.AsyncClient(base_url=url) as http:
        response = await http.put(
            "/2019-09-25/functions/noop/event-invoke-config",
            json={"DestinationConfig": {"OnFailure": {"Destination": arn}}},
        )
    assert response.status_code == 400
    assert response.headers["x-amzn-errortype"] == "InvalidParameterValueException"
    message = response.json()["message"]
    assert message.startswith("DestinationConfig.OnFailure.Destination")
    assert expected in message
    if expected == "does not exist":  # the error map's advice, from GetQueueUrl's error code
        assert "GetQueueUrl" in message and "create it first" in message
