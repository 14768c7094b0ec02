"""The callbacks of CodePipeline jobs, CloudFormation custom resources and Config rules, over
HTTP against a local server.

moto answers neither PutJobSuccessResult nor PutJobFailureResult, and takes PutEvaluations
only in test mode without recording it, so these tests run a local server that speaks the
AWS JSON 1.1 protocol (one POST per call, the operation in ``X-Amz-Target``), records each
request and answers as the service does; the real aiobotocore client talks to it. The
CloudFormation response goes to a pre-signed S3 URL, which the same server stands in for.
"""

from __future__ import annotations

import copy
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from eventflow.aws import AWSError, CodePipelineJob, ConfigRuleEvaluation, CustomResource
from http_support import serve_asgi

FIXTURES = Path(__file__).parent.parent / "fixtures" / "events"


def load(sample: str) -> Any:
    return json.loads((FIXTURES / sample).read_text(encoding="utf-8"))


class Recorder:
    """An ASGI app that records every request and answers ``status`` with ``reply``."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.status = 200
        self.reply: dict[str, Any] = {}

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                else:
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        self.requests.append(
            {"method": scope["method"], "path": scope["path"], "headers": headers, "body": body}
        )
        payload = json.dumps(self.reply).encode()
        await send(
            {
                "type": "http.response.start",
                "status": self.status,
                "headers": [(b"content-type", b"application/x-amz-json-1.1")],
            }
        )
        await send({"type": "http.response.body", "body": payload})


@pytest.fixture
async def server() -> AsyncIterator[tuple[Recorder, str]]:
    recorder = Recorder()
    async with serve_asgi(recorder) as url:
        yield recorder, url


def call_of(request: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    return request["headers"]["x-amz-target"], json.loads(request["body"])


# -- CodePipeline


async def test_codepipeline_job_succeed_calls_put_job_success_result(
    server: tuple[Recorder, str],
) -> None:
    recorder, url = server
    job = CodePipelineJob(load("codepipeline/codepipeline-job.json"), endpoint_url=url)
    await job.succeed(output_variables={"version": "1.2"}, summary="deployed")
    (request,) = recorder.requests
    target, body = call_of(request)
    assert target == "CodePipeline_20150709.PutJobSuccessResult"
    assert body == {
        "jobId": "11111111-abcd-1111-abcd-111111abcdef",
        "outputVariables": {"version": "1.2"},
        "executionDetails": {"summary": "deployed"},
    }
    assert job.reported == "succeeded"
    with pytest.raises(RuntimeError, match="already reported"):
        await job.fail("too late")
    assert len(recorder.requests) == 1


async def test_codepipeline_job_fail_calls_put_job_failure_result(
    server: tuple[Recorder, str],
) -> None:
    recorder, url = server
    job = CodePipelineJob(load("codepipeline/codepipeline-job.json"), endpoint_url=url)
    await job.fail("x" * 6000)
    target, body = call_of(recorder.requests[0])
    assert target == "CodePipeline_20150709.PutJobFailureResult"
    assert body["jobId"] == "11111111-abcd-1111-abcd-111111abcdef"
    assert body["failureDetails"]["type"] == "JobFailed"
    assert len(body["failureDetails"]["message"]) == 5000  # CodePipeline's limit


async def test_codepipeline_error_is_an_aws_error_and_the_job_can_be_reported_again(
    server: tuple[Recorder, str],
) -> None:
    recorder, url = server
    recorder.status = 400
    recorder.reply = {"__type": "JobNotFoundException", "message": "no such job"}
    job = CodePipelineJob(load("codepipeline/codepipeline-job.json"), endpoint_url=url)
    with pytest.raises(AWSError, match="JobNotFoundException"):
        await job.succeed()
    assert job.reported is None
    recorder.status, recorder.reply = 200, {}
    await job.succeed()
    assert job.reported == "succeeded"


# -- CloudFormation


async def test_custom_resource_success_puts_the_response_document(
    server: tuple[Recorder, str],
) -> None:
    recorder, url = server
    event = copy.deepcopy(load("cloudformation/custom-resource-create.json"))
    event["ResponseURL"] = f"{url}/response/7F%7Cb1f50fdfc25f3b?X-Amz-Signature=abc"
    resource = CustomResource(event)
    await resource.succeed(physical_resource_id="thing-1", data={"Arn": "arn:x"})
    (request,) = recorder.requests
    assert request["method"] == "PUT"
    assert request["path"] == "/response/7F|b1f50fdfc25f3b"
    assert request["headers"].get("content-type", "") == ""  # as signed: no content type
    assert json.loads(request["body"]) == {
        "Status": "SUCCESS",
        "Reason": "SUCCESS (request xxxxx-d2a0-4dfb-ab1f-xxxxxx)",
        "PhysicalResourceId": "thing-1",
        "StackId": event["StackId"],
        "RequestId": "xxxxx-d2a0-4dfb-ab1f-xxxxxx",
        "LogicalResourceId": "xxxxxxxxx",
        "NoEcho": False,
        "Data": {"Arn": "arn:x"},
    }


async def test_custom_resource_failure_keeps_the_physical_id_of_an_update(
    server: tuple[Recorder, str],
) -> None:
    recorder, url = server
    event = copy.deepcopy(load("cloudformation/custom-resource-update.json"))
    event["ResponseURL"] = f"{url}/response"
    await CustomResource(event).fail("the quota is exhausted")
    document = json.loads(recorder.requests[0]["body"])
    assert (document["Status"], document["Reason"]) == ("FAILED", "the quota is exhausted")
    assert document["PhysicalResourceId"] == "xxxxxxxxx"


async def test_custom_resource_refused_put_is_an_aws_error(server: tuple[Recorder, str]) -> None:
    recorder, url = server
    recorder.status = 403
    event = copy.deepcopy(load("cloudformation/custom-resource-create.json"))
    event["ResponseURL"] = f"{url}/expired"
    resource = CustomResource(event)
    with pytest.raises(AWSError, match="HTTP 403"):
        await resource.succeed()
    assert resource.reported is None


async def test_custom_resource_oversized_response_is_not_sent(
    server: tuple[Recorder, str],
) -> None:
    recorder, url = server
    event = copy.deepcopy(load("cloudformation/custom-resource-create.json"))
    event["ResponseURL"] = f"{url}/response"
    with pytest.raises(AWSError, match="at most 4096"):
        await CustomResource(event).succeed(data={"blob": "x" * 5000})
    assert recorder.requests == []


# -- AWS Config


async def test_config_evaluation_of_a_change_uses_the_configuration_item(
    server: tuple[Recorder, str],
) -> None:
    recorder, url = server
    recorder.reply = {"FailedEvaluations": []}
    event = load("config/config-rule-configuration-changed.json")
    evaluation = ConfigRuleEvaluation(event, endpoint_url=url)
    await evaluation.report("NON_COMPLIANT", annotation="t2.medium is not t2.micro")
    target, body = call_of(recorder.requests[0])
    assert target == "StarlingDoveService.PutEvaluations"
    assert body["ResultToken"] == event["resultToken"]
    (sent,) = body["Evaluations"]
    assert sent["ComplianceResourceType"] == "AWS::EC2::Instance"
    assert sent["ComplianceResourceId"] == "i-042dd005362091826"
    assert sent["ComplianceType"] == "NON_COMPLIANT"
    assert sent["Annotation"] == "t2.medium is not t2.micro"
    assert sent["OrderingTimestamp"]  # the item's capture time, as botocore sends it
    assert evaluation.reported == "NON_COMPLIANT"


async def test_config_evaluation_of_a_scheduled_rule_is_for_the_account(
    server: tuple[Recorder, str],
) -> None:
    recorder, url = server
    recorder.reply = {"FailedEvaluations": []}
    await ConfigRuleEvaluation(load("config/config-rule-scheduled.json"), endpoint_url=url).report(
        "COMPLIANT"
    )
    (sent,) = call_of(recorder.requests[0])[1]["Evaluations"]
    assert (sent["ComplianceResourceType"], sent["ComplianceResourceId"]) == (
        "AWS::::Account",
        "0123456789012",
    )


async def test_config_refused_evaluation_is_an_aws_error(server: tuple[Recorder, str]) -> None:
    recorder, url = server
    recorder.reply = {"FailedEvaluations": [{"ComplianceResourceId": "i-1"}]}
    evaluation = ConfigRuleEvaluation(load("config/config-rule-scheduled.json"), endpoint_url=url)
    with pytest.raises(AWSError, match="refused the evaluation"):
        await evaluation.report("COMPLIANT")
    assert evaluation.reported is None


def test_config_unknown_compliance_type_is_refused() -> None:
    from eventflow import ConfigurationError

    evaluation = ConfigRuleEvaluation(load("config/config-rule-scheduled.json"))
    with pytest.raises(ConfigurationError, match="NON_COMPLIANT"):
        evaluation.evaluation("FINE")
