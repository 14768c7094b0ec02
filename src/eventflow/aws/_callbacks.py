"""The calls back to AWS that finish a CodePipeline job, a CloudFormation custom resource and
an AWS Config rule evaluation.

Each source hands the function a job it must report on, or AWS waits (CodePipeline until
the action times out, CloudFormation for an hour):

========================  ===========================================  =======================
event                     helper                                       call
========================  ===========================================  =======================
``CodePipeline.job``      ``await CodePipelineJob(event).succeed()``   PutJobSuccessResult /
                          / ``.fail(message)``                         PutJobFailureResult
custom resource request   ``await CustomResource(event).succeed()``    PUT of the response
                          / ``.fail(reason)``                          document to ResponseURL
Config rule event         ``await ConfigRuleEvaluation(event)``        PutEvaluations
                          ``.report("COMPLIANT")``
========================  ===========================================  =======================
"""

from __future__ import annotations

import json
from typing import Any, Final

import aiohttp
from aiobotocore.session import AioSession
from botocore.exceptions import BotoCoreError, ClientError

from .._errors import ConfigurationError
from ..events import CloudFormationCustomResourceEvent, CodePipelineJobEvent, ConfigRuleEvent
from ._clients import shared_client
from ._errors import AWSError, error_code

__all__ = ("CodePipelineJob", "ConfigRuleEvaluation", "CustomResource")

_FAILURE_TYPES: Final = (
    "JobFailed",
    "ConfigurationError",
    "PermissionError",
    "RevisionOutOfSync",
    "RevisionUnavailable",
    "SystemUnavailable",
)
_MAX_FAILURE_MESSAGE: Final = 5000  # PutJobFailureResult's limit on failureDetails.message
_MAX_CFN_RESPONSE: Final = 4096  # CloudFormation's limit on a response document
_COMPLIANCE: Final = ("COMPLIANT", "NON_COMPLIANT", "NOT_APPLICABLE", "INSUFFICIENT_DATA")


class _Reporter:
    """Once-only reporting: AWS takes one outcome per job or request."""

    _what: str

    def __init__(self) -> None:
        self.reported: str | None = None

    def _check(self) -> None:
        if self.reported is not None:
            raise RuntimeError(
                f"This {self._what} was already reported as {self.reported}; AWS takes one "
                "outcome per request, so report it once."
            )


async def _call(
    service: str,
    operation: str,
    params: dict[str, Any],
    *,
    endpoint_url: str | None,
    region_name: str | None,
    session: AioSession | None,
    what: str,
) -> dict[str, Any]:
    api = "".join(part.title() for part in operation.split("_"))
    try:
        async with shared_client(
            service, region_name=region_name, endpoint_url=endpoint_url, session=session
        ) as client:
            result: dict[str, Any] = await getattr(client, operation)(**params)
    except ClientError as exc:
        raise AWSError(
            f"{api} for {what} failed with {error_code(exc)}: {exc}. Check that the function's "
            f"role may call {service}:{api} and that the ID is current."
        ) from exc
    except BotoCoreError as exc:
        raise AWSError(
            f"{api} for {what} could not reach {service}: {exc}. Check endpoint_url, "
            "region_name and the network."
        ) from exc
    return result


class CodePipelineJob(_Reporter):
    """Report a CodePipeline job's outcome: the callback a Lambda invoke action owes.

    Args:
        event: The job event as delivered (``{"CodePipeline.job": {...}}``) or its
            :class:`eventflow.events.CodePipelineJobEvent`.
        endpoint_url: CodePipeline endpoint; ``None`` for AWS or ``AWS_ENDPOINT_URL*``.
        region_name: The pipeline's region; ``None`` for the standard AWS configuration.
        session: An aiobotocore session to use.

    Raises:
        InvalidEvent: The event is not a CodePipeline job.
    """

    _what = "CodePipeline job"

    def __init__(
        self,
        event: Any,
        *,
        endpoint_url: str | None = None,
        region_name: str | None = None,
        session: AioSession | None = None,
    ) -> None:
        super().__init__()
        is_view = isinstance(event, CodePipelineJobEvent)
        self.job = event if is_view else CodePipelineJobEvent.from_dict(event)
        self._endpoint_url = endpoint_url
        self._region_name = region_name
        self._session = session

    @property
    def job_id(self) -> str:
        """The job's ID."""
        return self.job.job_id

    async def succeed(
        self,
        output_variables: dict[str, str] | None = None,
        *,
        continuation_token: str | None = None,
        summary: str | None = None,
        external_execution_id: str | None = None,
    ) -> None:
        """Call PutJobSuccessResult.

        Args:
            output_variables: The action's output variables.
            continuation_token: Set to have CodePipeline run the action again (a long job
                in several runs); the next job carries it.
            summary: ``executionDetails.summary``, shown in the console.
            external_execution_id: ``executionDetails.externalExecutionId``.

        Raises:
            AWSError: The call failed.
            RuntimeError: The job was already reported.
        """
        params: dict[str, Any] = {"jobId": self.job_id}
        if output_variables:
            params["outputVariables"] = dict(output_variables)
        if continuation_token is not None:
            params["continuationToken"] = continuation_token
        details = {
            k: v
            for k, v in (("summary", summary), ("externalExecutionId", external_execution_id))
            if v is not None
        }
        if details:
            params["executionDetails"] = details
        self._check()
        await self._put("put_job_success_result", params)
        self.reported = "succeeded"

    async def fail(
        self,
        message: str,
        *,
        failure_type: str = "JobFailed",
        external_execution_id: str | None = None,
    ) -> None:
        """Call PutJobFailureResult with ``message`` (cut to CodePipeline's 5000 characters).

        Args:
            message: Why the job failed; shown in the console.
            failure_type: One of CodePipeline's failure types ("JobFailed", ...).
            external_execution_id: ``failureDetails.externalExecutionId``.

        Raises:
            ConfigurationError: ``failure_type`` is not one CodePipeline knows.
            AWSError: The call failed.
            RuntimeError: The job was already reported.
        """
        if failure_type not in _FAILURE_TYPES:
            raise ConfigurationError(
                f"failure_type must be one of {', '.join(_FAILURE_TYPES)}, got {failure_type!r}."
            )
        details: dict[str, Any] = {
            "type": failure_type,
            "message": message[:_MAX_FAILURE_MESSAGE] or failure_type,
        }
        if external_execution_id is not None:
            details["externalExecutionId"] = external_execution_id
        self._check()
        await self._put("put_job_failure_result", {"jobId": self.job_id, "failureDetails": details})
        self.reported = "failed"

    async def _put(self, operation: str, params: dict[str, Any]) -> None:
        await _call(
            "codepipeline",
            operation,
            params,
            endpoint_url=self._endpoint_url,
            region_name=self._region_name,
            session=self._session,
            what=f"CodePipeline job {self.job_id}",
        )


class CustomResource(_Reporter):
    """Answer a CloudFormation custom resource request: PUT the response document to its
    pre-signed ``ResponseURL`` (what ``cfn-response`` does).

    Args:
        event: The request as delivered, or its
            :class:`eventflow.events.CloudFormationCustomResourceEvent`.
        timeout: Seconds the PUT may take.

    Raises:
        InvalidEvent: The event is not a custom resource request.
    """

    _what = "custom resource request"

    def __init__(self, event: Any, *, timeout: float = 30.0) -> None:
        super().__init__()
        self.request = (
            event
            if isinstance(event, CloudFormationCustomResourceEvent)
            else CloudFormationCustomResourceEvent.from_dict(event)
        )
        self._timeout = timeout

    def response(
        self,
        status: str,
        *,
        reason: str | None = None,
        physical_resource_id: str | None = None,
        data: dict[str, Any] | None = None,
        no_echo: bool = False,
    ) -> dict[str, Any]:
        """The response document for ``status`` ("SUCCESS" or "FAILED")."""
        request = self.request
        physical = (
            physical_resource_id
            or request.physical_resource_id
            # a Create answered without an ID gets one that stays the same on a retry
            or f"{request.logical_resource_id}-{request.request_id}"
        )
        document: dict[str, Any] = {
            "Status": status,
            "Reason": reason or f"{status} (request {request.request_id})",
            "PhysicalResourceId": physical,
            "StackId": request.stack_id,
            "RequestId": request.request_id,
            "LogicalResourceId": request.logical_resource_id,
            "NoEcho": no_echo,
        }
        if data:
            document["Data"] = data
        return document

    async def succeed(
        self,
        *,
        physical_resource_id: str | None = None,
        data: dict[str, Any] | None = None,
        no_echo: bool = False,
    ) -> None:
        """Send ``SUCCESS``.

        Args:
            physical_resource_id: The resource's ID (default: the request's
                ``PhysicalResourceId``, or for a Create ``<LogicalResourceId>-<RequestId>``).
                A different ID on Update makes CloudFormation delete the old resource.
            data: Values for ``Fn::GetAtt``.
            no_echo: Mask ``data`` in the console and API output.

        Raises:
            AWSError: The PUT failed, or the document is over CloudFormation's 4096 bytes.
            RuntimeError: The request was already answered.
        """
        self._check()
        await self._send(
            self.response(
                "SUCCESS", physical_resource_id=physical_resource_id, data=data, no_echo=no_echo
            )
        )
        self.reported = "SUCCESS"

    async def fail(self, reason: str, *, physical_resource_id: str | None = None) -> None:
        """Send ``FAILED`` with ``reason`` (shown in the stack's events).

        Raises:
            AWSError: The PUT failed.
            RuntimeError: The request was already answered.
        """
        self._check()
        await self._send(
            self.response("FAILED", reason=reason, physical_resource_id=physical_resource_id)
        )
        self.reported = "FAILED"

    async def _send(self, document: dict[str, Any]) -> None:
        body = json.dumps(document).encode("utf-8")
        if len(body) > _MAX_CFN_RESPONSE:
            raise AWSError(
                f"The custom resource response is {len(body)} bytes; CloudFormation accepts at "
                f"most {_MAX_CFN_RESPONSE}. Return less in data."
            )
        # the URL is pre-signed without a content type: send an empty one, as cfn-response
        headers = {"Content-Type": "", "Content-Length": str(len(body))}
        timeout = aiohttp.ClientTimeout(total=self._timeout)
        try:
            async with (
                aiohttp.ClientSession(timeout=timeout) as http,
                http.put(self.request.response_url, data=body, headers=headers) as reply,
            ):
                text = await reply.text()
                status = reply.status
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise AWSError(
                f"The custom resource response for request {self.request.request_id} could not "
                f"be sent to its ResponseURL: {type(exc).__name__}: {exc}. The stack waits for "
                "it; check the network (the URL is valid for two hours)."
            ) from exc
        if not 200 <= status < 300:
            raise AWSError(
                f"The ResponseURL of request {self.request.request_id} answered HTTP {status} "
                f"({text[:200]!r}); the URL is pre-signed for two hours and for one PUT."
            )


class ConfigRuleEvaluation(_Reporter):
    """Report an AWS Config rule's verdict with PutEvaluations and the event's resultToken.

    Args:
        event: The rule event as delivered, or its :class:`eventflow.events.ConfigRuleEvent`.
        endpoint_url: AWS Config endpoint; ``None`` for AWS or ``AWS_ENDPOINT_URL*``.
        region_name: The rule's region; ``None`` for the standard AWS configuration.
        session: An aiobotocore session to use.

    Raises:
        InvalidEvent: The event is not a Config rule event.
    """

    _what = "Config rule evaluation"

    def __init__(
        self,
        event: Any,
        *,
        endpoint_url: str | None = None,
        region_name: str | None = None,
        session: AioSession | None = None,
    ) -> None:
        super().__init__()
        self.rule_event = (
            event if isinstance(event, ConfigRuleEvent) else ConfigRuleEvent.from_dict(event)
        )
        self._endpoint_url = endpoint_url
        self._region_name = region_name
        self._session = session

    def evaluation(
        self,
        compliance_type: str,
        *,
        annotation: str | None = None,
        resource_type: str | None = None,
        resource_id: str | None = None,
        ordering_timestamp: str | None = None,
    ) -> dict[str, Any]:
        """The Evaluation for ``compliance_type``; the resource and time default to the
        configuration item's (a change notification) or to the account and the
        notification's time (a scheduled rule)."""
        if compliance_type not in _COMPLIANCE:
            raise ConfigurationError(
                f"compliance_type must be one of {', '.join(_COMPLIANCE)}, got {compliance_type!r}."
            )
        rule = self.rule_event
        item = rule.configuration_item or {}
        invoking = rule.invoking_event
        evaluation: dict[str, Any] = {
            "ComplianceResourceType": resource_type or item.get("resourceType") or "AWS::::Account",
            "ComplianceResourceId": resource_id or item.get("resourceId") or rule.account_id,
            "ComplianceType": compliance_type,
            "OrderingTimestamp": ordering_timestamp
            or item.get("configurationItemCaptureTime")
            or invoking.get("notificationCreationTime"),
        }
        if evaluation["OrderingTimestamp"] is None:
            raise ConfigurationError(
                "The Config event carries no time to order this evaluation by; pass "
                "ordering_timestamp (ISO 8601)."
            )
        if annotation:
            evaluation["Annotation"] = annotation[:256]  # Config's limit
        return evaluation

    async def report(
        self,
        compliance_type: str,
        *,
        annotation: str | None = None,
        resource_type: str | None = None,
        resource_id: str | None = None,
        ordering_timestamp: str | None = None,
    ) -> None:
        """Call PutEvaluations with one evaluation (see :meth:`evaluation`).

        Raises:
            ConfigurationError: ``compliance_type`` is not one Config knows.
            AWSError: The call failed, or Config refused the evaluation.
            RuntimeError: The evaluation was already reported.
        """
        evaluation = self.evaluation(
            compliance_type,
            annotation=annotation,
            resource_type=resource_type,
            resource_id=resource_id,
            ordering_timestamp=ordering_timestamp,
        )
        self._check()
        rule = self.rule_event.config_rule_name
        result = await _call(
            "config",
            "put_evaluations",
            {"Evaluations": [evaluation], "ResultToken": self.rule_event.result_token},
            endpoint_url=self._endpoint_url,
            region_name=self._region_name,
            session=self._session,
            what=f"Config rule {rule}",
        )
        failed = result.get("FailedEvaluations") or []
        if not failed:
            self.reported = compliance_type
        else:
            raise AWSError(
                f"AWS Config refused the evaluation of rule {rule}: {failed!r}. Check the "
                "resource type and ID."
            )
