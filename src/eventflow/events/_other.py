"""The views of Lambda's other asynchronous sources: CloudWatch Logs, CodeCommit,
CodePipeline, SES, CloudFormation custom resources, AWS Config and IoT Events.

Each view reads one more asynchronous source of Lambda's. Their ``idempotency_key`` is the
key ``Idempotency(key=None)`` uses for the same event.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

from ._base import (
    _MISSING,
    _Ctx,
    _decode,
    _dict_list,
    _json_in_string,
    _key_of,
    _lookup,
    _nested_dict,
    _obj,
    _opt_bool,
    _opt_str,
    _record_source,
    _records,
    _str,
    _str_map,
    _str_tuple,
    _typed,
    _View,
)

_CWL_HINT: Final = (
    "expected a CloudWatch Logs subscription event "
    "(see https://docs.aws.amazon.com/lambda/latest/dg/services-cloudwatchlogs.html)"
)
_CODECOMMIT_HINT: Final = (
    "expected a CodeCommit trigger event or a 'CodeCommit Repository State Change' EventBridge"
    " event (see https://docs.aws.amazon.com/lambda/latest/dg/services-codecommit.html)"
)
_CODEPIPELINE_HINT: Final = (
    "expected a CodePipeline job event "
    "(see https://docs.aws.amazon.com/codepipeline/latest/userguide/actions-invoke-lambda-function.html)"
)
_SES_HINT: Final = (
    "expected an SES receipt event "
    "(see https://docs.aws.amazon.com/ses/latest/dg/receiving-email-action-lambda-event.html)"
)
_CFN_HINT: Final = (
    "expected a CloudFormation custom resource request "
    "(see https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/crpg-ref-requests.html)"
)
_CONFIG_HINT: Final = (
    "expected an AWS Config rule event "
    "(see https://docs.aws.amazon.com/config/latest/developerguide/evaluate-config_develop-rules_example-events.html)"
)
_IOTEVENTS_HINT: Final = (
    "expected an AWS IoT Events action event "
    "(see https://docs.aws.amazon.com/lambda/latest/dg/services-iotevents.html)"
)


# -- CloudWatch Logs


@dataclass(frozen=True, slots=True)
class CloudWatchLogEvent:
    """One log event of a CloudWatch Logs subscription delivery.

    Attributes:
        id: ``id``, unique per log event.
        timestamp: ``timestamp``, milliseconds since the epoch.
        message: ``message``, the log line.
        extracted_fields: ``extractedFields`` of a filter pattern with fields, or ``{}``.
    """

    id: str
    timestamp: int
    message: str
    extracted_fields: dict[str, str]


@dataclass(frozen=True, slots=True)
class CloudWatchLogsEvent(_View):
    """A CloudWatch Logs subscription delivery: ``{"awslogs": {"data": <base64 of gzip>}}``.

    Attributes:
        message_type: ``DATA_MESSAGE``, or ``CONTROL_MESSAGE`` for the message CloudWatch Logs
            sends first to check that it can reach the destination (see :attr:`is_control`).
        owner: The account ID of the log group.
        log_group: ``logGroup``.
        log_stream: ``logStream``.
        subscription_filters: ``subscriptionFilters``, the names of the matching filters.
        log_events: The log events, in order.
        policy_level: ``policyLevel`` (account-level subscriptions), or None.
        raw: The decoded document (the JSON inside ``awslogs.data``).
        event: The event as delivered.
    """

    _hint = _CWL_HINT

    message_type: str
    owner: str
    log_group: str
    log_stream: str
    subscription_filters: tuple[str, ...]
    log_events: tuple[CloudWatchLogEvent, ...]
    policy_level: str | None
    raw: dict[str, Any]
    event: dict[str, Any]

    @property
    def is_control(self) -> bool:
        """True for the CONTROL_MESSAGE CloudWatch Logs sends to test the subscription."""
        return self.message_type == "CONTROL_MESSAGE"

    @property
    def idempotency_key(self) -> str:
        """``cwlogs:<owner>:<group>:<stream>:<first id>:<last id>`` (the default key)."""
        return _key_of(self.event)

    @classmethod
    def from_dict(cls, event: object) -> CloudWatchLogsEvent:
        """Read a CloudWatch Logs subscription event, decoding ``awslogs.data``.

        Args:
            event: The event as decoded JSON.

        Returns:
            The typed view.

        Raises:
            InvalidEvent: ``awslogs.data`` is missing, not base64 of gzip of JSON, or a field
                of the decoded document is missing or has the wrong type.
        """
        data, ctx = cls._input(event)
        doc = _nested_dict(
            decode_awslogs_data(_str(data, "awslogs.data", ctx), ctx),
            "the decoded 'awslogs.data'",
            _CWL_HINT,
        )
        inner = _Ctx("the decoded 'awslogs.data'", _CWL_HINT)
        log_events = []
        for item in _dict_list(doc, "logEvents", inner):
            log_events.append(
                CloudWatchLogEvent(
                    id=_str(item, "id", inner),
                    timestamp=_typed(item, "timestamp", inner, int, required=True),
                    message=_str(item, "message", inner),
                    extracted_fields=_str_map(item, "extractedFields", inner),
                )
            )
        return cls(
            message_type=_str(doc, "messageType", inner),
            owner=_str(doc, "owner", inner),
            log_group=_str(doc, "logGroup", inner),
            log_stream=_str(doc, "logStream", inner),
            subscription_filters=_str_tuple(doc, "subscriptionFilters", inner),
            log_events=tuple(log_events),
            policy_level=_opt_str(doc, "policyLevel", inner),
            raw=doc,
            event=data,
        )


def decode_awslogs_data(data: str, ctx: _Ctx | None = None) -> Any:
    """Decode CloudWatch Logs' ``awslogs.data``: base64, then gzip, then JSON.

    Raises:
        InvalidEvent: One of the three steps fails.
    """
    import base64
    import binascii
    import gzip
    import zlib

    ctx = ctx or _Ctx("the event", _CWL_HINT)
    try:
        compressed = base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ctx.fail(f"has 'awslogs.data' that is not base64 ({exc})") from exc
    try:
        text = gzip.decompress(compressed)
    except (OSError, EOFError, zlib.error) as exc:
        raise ctx.fail(f"has 'awslogs.data' that is not gzip-compressed ({exc})") from exc
    return _decode(text.decode("utf-8", "replace"), "'awslogs.data' whose content", ctx)


# -- CodeCommit


@dataclass(frozen=True, slots=True)
class CodeCommitReference:
    """A reference a CodeCommit event is about.

    Attributes:
        ref: The full reference name, e.g. "refs/heads/main".
        commit: The commit it points to now (None when it was deleted).
        old_commit: The commit it pointed to before (EventBridge ``oldCommitId``), or None.
        created: True when the reference was created (trigger ``created``, or
            EventBridge ``referenceCreated``).
        deleted: True when it was deleted.
    """

    ref: str
    commit: str | None
    old_commit: str | None
    created: bool
    deleted: bool


@dataclass(frozen=True, slots=True)
class CodeCommitRecord:
    """One CodeCommit event: a trigger record, or an EventBridge repository state change.

    Attributes:
        event_id: ``eventId`` (trigger) or the EventBridge ``id``.
        event_name: ``eventName`` ("ReferenceChanges", "TriggerEventTest") or the EventBridge
            ``detail.event`` ("referenceCreated", "referenceUpdated", "referenceDeleted").
        repository: The repository name.
        repository_arn: ``eventSourceARN`` (trigger) or ``resources[0]`` (EventBridge).
        region: ``awsRegion`` or ``region``, or None.
        time: ``eventTime`` or ``time``.
        user_arn: ``userIdentityARN`` or ``detail.callerUserArn``, or None.
        references: The references that changed.
        trigger_name: ``eventTriggerName`` (trigger only), or None.
        custom_data: ``customData`` of the trigger, or None.
        raw: The record, or the EventBridge envelope.
    """

    event_id: str
    event_name: str
    repository: str
    repository_arn: str | None
    region: str | None
    time: str
    user_arn: str | None
    references: tuple[CodeCommitReference, ...]
    trigger_name: str | None
    custom_data: str | None
    raw: dict[str, Any]


@dataclass(frozen=True, slots=True)
class CodeCommitEvent(_View):
    """CodeCommit events: a trigger's ``{"Records": [...]}`` or an EventBridge event.

    Attributes:
        records: The events, in delivery order (one for EventBridge).
        event: The event as delivered.
    """

    _hint = _CODECOMMIT_HINT

    records: tuple[CodeCommitRecord, ...]
    event: dict[str, Any]

    @property
    def idempotency_key(self) -> str:
        """``codecommit:<eventId>`` per record, or ``eventbridge:<id>`` (the default key)."""
        return _key_of(self.event)

    @classmethod
    def from_dict(cls, event: object) -> CodeCommitEvent:
        """Read a CodeCommit trigger event or a CodeCommit EventBridge event.

        Args:
            event: The event as decoded JSON.

        Returns:
            The typed view.

        Raises:
            InvalidEvent: The event is neither shape, or a field is missing or has the wrong
                type.
        """
        data, top = cls._input(event)
        if "Records" not in data:
            ctx = _Ctx("the EventBridge event", _CODECOMMIT_HINT)
            source = _str(data, "source", ctx)
            if source != "aws.codecommit":
                raise ctx.fail(f"has source {source!r}, not 'aws.codecommit'")
            return cls(records=(_codecommit_eventbridge(data, ctx),), event=data)
        records = []
        for index, record in enumerate(_records(data, top)):
            source = _record_source(record, index, "", _CODECOMMIT_HINT)
            ctx = _Ctx(f"event record {index}", _CODECOMMIT_HINT)
            if source != "aws:codecommit":
                raise ctx.fail(f"has eventSource {source!r}, not 'aws:codecommit'")
            records.append(_codecommit_trigger(record, ctx))
        return cls(records=tuple(records), event=data)


def _codecommit_trigger(record: dict[str, Any], ctx: _Ctx) -> CodeCommitRecord:
    arn = _str(record, "eventSourceARN", ctx)
    references = []
    for ref in _dict_list(record, "codecommit.references", ctx):
        deleted = bool(_opt_bool(ref, "deleted", ctx))
        references.append(
            CodeCommitReference(
                ref=_str(ref, "ref", ctx),
                commit=_opt_str(ref, "commit", ctx),
                old_commit=None,
                created=bool(_opt_bool(ref, "created", ctx)),
                deleted=deleted,
            )
        )
    return CodeCommitRecord(
        event_id=_str(record, "eventId", ctx),
        event_name=_str(record, "eventName", ctx),
        repository=arn.rsplit(":", 1)[-1],
        repository_arn=arn,
        region=_opt_str(record, "awsRegion", ctx),
        time=_str(record, "eventTime", ctx),
        user_arn=_opt_str(record, "userIdentityARN", ctx),
        references=tuple(references),
        trigger_name=_opt_str(record, "eventTriggerName", ctx),
        custom_data=_opt_str(record, "customData", ctx),
        raw=record,
    )


def _codecommit_eventbridge(envelope: dict[str, Any], ctx: _Ctx) -> CodeCommitRecord:
    name = _str(envelope, "detail.event", ctx)
    resources = _str_tuple(envelope, "resources", ctx)
    full_name = _opt_str(envelope, "detail.referenceFullName", ctx)
    references: tuple[CodeCommitReference, ...] = ()
    if full_name is not None:
        references = (
            CodeCommitReference(
                ref=full_name,
                commit=_opt_str(envelope, "detail.commitId", ctx),
                old_commit=_opt_str(envelope, "detail.oldCommitId", ctx),
                created=name == "referenceCreated",
                deleted=name == "referenceDeleted",
            ),
        )
    return CodeCommitRecord(
        event_id=_str(envelope, "id", ctx),
        event_name=name,
        repository=_str(envelope, "detail.repositoryName", ctx),
        repository_arn=resources[0] if resources else None,
        region=_opt_str(envelope, "region", ctx),
        time=_str(envelope, "time", ctx),
        user_arn=_opt_str(envelope, "detail.callerUserArn", ctx),
        references=references,
        trigger_name=None,
        custom_data=None,
        raw=envelope,
    )


# -- CodePipeline


@dataclass(frozen=True, slots=True)
class CodePipelineArtifact:
    """An input or output artifact of a CodePipeline job.

    Attributes:
        name: ``name``.
        revision: ``revision``, or None.
        location_type: ``location.type`` ("S3").
        bucket: ``location.s3Location.bucketName``, or None for another location type.
        key: ``location.s3Location.objectKey``, or None.
    """

    name: str
    revision: str | None
    location_type: str
    bucket: str | None
    key: str | None


@dataclass(frozen=True, slots=True)
class CodePipelineJobEvent(_View):
    """The job CodePipeline hands a Lambda invoke action (``{"CodePipeline.job": {...}}``).

    The function must report the job's outcome with PutJobSuccessResult or
    PutJobFailureResult: :class:`eventflow.aws.CodePipelineJob` does that in one line.

    Attributes:
        job_id: ``id``.
        account_id: ``accountId``.
        user_parameters: ``data.actionConfiguration.configuration.UserParameters``, or None.
        configuration: ``data.actionConfiguration.configuration``, all of it.
        input_artifacts: ``data.inputArtifacts``.
        output_artifacts: ``data.outputArtifacts``.
        artifact_credentials: ``data.artifactCredentials`` (temporary credentials for the
            artifact bucket), or ``{}``.
        continuation_token: ``data.continuationToken`` when the job continues an earlier
            run of the action, or None.
        encryption_key: ``data.encryptionKey``, or None.
        event: The event as delivered.
    """

    _hint = _CODEPIPELINE_HINT

    job_id: str
    account_id: str
    user_parameters: str | None
    configuration: dict[str, Any]
    input_artifacts: tuple[CodePipelineArtifact, ...]
    output_artifacts: tuple[CodePipelineArtifact, ...]
    artifact_credentials: dict[str, Any]
    continuation_token: str | None
    encryption_key: dict[str, Any] | None
    event: dict[str, Any]

    @property
    def idempotency_key(self) -> str:
        """``codepipeline:<job id>`` (the default key)."""
        return _key_of(self.event)

    def user_parameters_json(self) -> Any:
        """Decode ``UserParameters`` as JSON (None when there are none).

        Raises:
            InvalidEvent: They are not JSON.
        """
        if self.user_parameters is None:
            return None
        ctx = _Ctx(f"CodePipeline job {self.job_id!r}", "expected JSON UserParameters")
        return _decode(self.user_parameters, "'UserParameters'", ctx)

    @classmethod
    def from_dict(cls, event: object) -> CodePipelineJobEvent:
        """Read a CodePipeline job event.

        Args:
            event: The event as decoded JSON.

        Returns:
            The typed view.

        Raises:
            InvalidEvent: The event has no ``CodePipeline.job``, or a field is missing or has
                the wrong type.
        """
        data, ctx = cls._input(event)
        job = data.get("CodePipeline.job")  # the key itself holds a dot
        if not isinstance(job, dict):
            raise ctx.fail("has no 'CodePipeline.job' object")
        ctx = _Ctx("the CodePipeline job", _CODEPIPELINE_HINT)
        configuration = (
            _typed(job, "data.actionConfiguration.configuration", ctx, dict, required=False) or {}
        )
        user_parameters = configuration.get("UserParameters")
        if user_parameters is not None and not isinstance(user_parameters, str):
            raise ctx.fail("has 'UserParameters' that is not a string")
        return cls(
            job_id=_str(job, "id", ctx),
            account_id=_str(job, "accountId", ctx),
            user_parameters=user_parameters,
            configuration=configuration,
            input_artifacts=_artifacts(job, "data.inputArtifacts", ctx),
            output_artifacts=_artifacts(job, "data.outputArtifacts", ctx),
            artifact_credentials=_typed(job, "data.artifactCredentials", ctx, dict, required=False)
            or {},
            continuation_token=_opt_str(job, "data.continuationToken", ctx),
            encryption_key=_typed(job, "data.encryptionKey", ctx, dict, required=False),
            event=data,
        )


def _artifacts(job: dict[str, Any], path: str, ctx: _Ctx) -> tuple[CodePipelineArtifact, ...]:
    if _lookup(job, path, ctx) in (_MISSING, None):
        return ()
    artifacts = []
    for item in _dict_list(job, path, ctx):
        artifacts.append(
            CodePipelineArtifact(
                name=_str(item, "name", ctx),
                revision=_opt_str(item, "revision", ctx),
                location_type=_str(item, "location.type", ctx),
                bucket=_opt_str(item, "location.s3Location.bucketName", ctx),
                key=_opt_str(item, "location.s3Location.objectKey", ctx),
            )
        )
    return tuple(artifacts)


# -- SES


@dataclass(frozen=True, slots=True)
class SESRecord:
    """One e-mail received by SES and handed to a Lambda receipt-rule action.

    Attributes:
        message_id: ``mail.messageId``, SES's ID of the message (also its S3 object key when
            an S3 action stored it).
        source: ``mail.source``, the envelope sender.
        destination: ``mail.destination``, the envelope recipients.
        timestamp: ``mail.timestamp``.
        subject: ``mail.commonHeaders.subject``, or None.
        sender: ``mail.commonHeaders.from``, or ``()``.
        recipients: ``receipt.recipients``, those this receipt rule matched.
        headers: ``mail.headers`` as (name, value) pairs, or ``()``.
        spam: ``receipt.spamVerdict.status`` ("PASS", "FAIL", "GRAY", "PROCESSING_FAILED").
        virus: ``receipt.virusVerdict.status``.
        spf: ``receipt.spfVerdict.status``.
        dkim: ``receipt.dkimVerdict.status``.
        dmarc: ``receipt.dmarcVerdict.status``, or None.
        action: ``receipt.action`` (type, invocationType, functionArn).
        raw: The record.
    """

    message_id: str
    source: str
    destination: tuple[str, ...]
    timestamp: str
    subject: str | None
    sender: tuple[str, ...]
    recipients: tuple[str, ...]
    headers: tuple[tuple[str, str], ...]
    spam: str | None
    virus: str | None
    spf: str | None
    dkim: str | None
    dmarc: str | None
    action: dict[str, Any]
    raw: dict[str, Any]


@dataclass(frozen=True, slots=True)
class SESEvent(_View):
    """An SES receipt event (``{"Records": [{"eventSource": "aws:ses", "ses": {...}}]}``).

    Attributes:
        records: The messages, in delivery order.
        event: The event as delivered.
    """

    _hint = _SES_HINT

    records: tuple[SESRecord, ...]
    event: dict[str, Any]

    @property
    def idempotency_key(self) -> str:
        """``ses:<mail.messageId>`` per record (the default key)."""
        return _key_of(self.event)

    @classmethod
    def from_dict(cls, event: object) -> SESEvent:
        """Read an SES receipt event.

        Args:
            event: The event as decoded JSON.

        Returns:
            The typed view.

        Raises:
            InvalidEvent: The event is not an SES receipt event, or a field is missing or has
                the wrong type.
        """
        data, top = cls._input(event)
        records = []
        for index, record in enumerate(_records(data, top)):
            source = _record_source(record, index, "", _SES_HINT)
            ctx = _Ctx(f"SES record {index}", _SES_HINT)
            if source != "aws:ses":
                raise ctx.fail(f"has eventSource {source!r}, not 'aws:ses'")
            headers = []
            if _lookup(record, "ses.mail.headers", ctx) not in (_MISSING, None):
                for header in _dict_list(record, "ses.mail.headers", ctx):
                    headers.append((_str(header, "name", ctx), _str(header, "value", ctx)))
            sender: tuple[str, ...] = ()
            if _lookup(record, "ses.mail.commonHeaders.from", ctx) not in (_MISSING, None):
                sender = _str_tuple(record, "ses.mail.commonHeaders.from", ctx)
            records.append(
                SESRecord(
                    message_id=_str(record, "ses.mail.messageId", ctx),
                    source=_str(record, "ses.mail.source", ctx),
                    destination=_str_tuple(record, "ses.mail.destination", ctx),
                    timestamp=_str(record, "ses.mail.timestamp", ctx),
                    subject=_opt_str(record, "ses.mail.commonHeaders.subject", ctx),
                    sender=sender,
                    recipients=_str_tuple(record, "ses.receipt.recipients", ctx),
                    headers=tuple(headers),
                    spam=_opt_str(record, "ses.receipt.spamVerdict.status", ctx),
                    virus=_opt_str(record, "ses.receipt.virusVerdict.status", ctx),
                    spf=_opt_str(record, "ses.receipt.spfVerdict.status", ctx),
                    dkim=_opt_str(record, "ses.receipt.dkimVerdict.status", ctx),
                    dmarc=_opt_str(record, "ses.receipt.dmarcVerdict.status", ctx),
                    action=_obj(record, "ses.receipt.action", ctx),
                    raw=record,
                )
            )
        return cls(records=tuple(records), event=data)


# -- CloudFormation custom resources


@dataclass(frozen=True, slots=True)
class CloudFormationCustomResourceEvent(_View):
    """A CloudFormation custom resource request.

    The function must PUT a response document to :attr:`response_url`, or the stack waits
    for an hour: :class:`eventflow.aws.CustomResource` sends it in one line.

    Attributes:
        request_type: ``RequestType``: "Create", "Update" or "Delete".
        response_url: ``ResponseURL``, the pre-signed S3 URL for the response.
        stack_id: ``StackId``.
        request_id: ``RequestId``, unique per request.
        logical_resource_id: ``LogicalResourceId``.
        resource_type: ``ResourceType`` ("Custom::..." or "AWS::CloudFormation::CustomResource").
        physical_resource_id: ``PhysicalResourceId`` (Update and Delete), or None.
        service_token: ``ServiceToken``, or None.
        resource_properties: ``ResourceProperties``, or ``{}``.
        old_resource_properties: ``OldResourceProperties`` (Update), or None.
        event: The event as delivered.
    """

    _hint = _CFN_HINT

    request_type: str
    response_url: str
    stack_id: str
    request_id: str
    logical_resource_id: str
    resource_type: str
    physical_resource_id: str | None
    service_token: str | None
    resource_properties: dict[str, Any]
    old_resource_properties: dict[str, Any] | None
    event: dict[str, Any]

    @property
    def idempotency_key(self) -> str:
        """``cloudformation:<StackId>/<LogicalResourceId>/<RequestId>`` (the default key)."""
        return _key_of(self.event)

    @classmethod
    def from_dict(cls, event: object) -> CloudFormationCustomResourceEvent:
        """Read a CloudFormation custom resource request.

        Args:
            event: The event as decoded JSON.

        Returns:
            The typed view.

        Raises:
            InvalidEvent: A field is missing or has the wrong type, or ``RequestType`` is not
                Create, Update or Delete.
        """
        data, ctx = cls._input(event)
        request_type = _str(data, "RequestType", ctx)
        if request_type not in ("Create", "Update", "Delete"):
            raise ctx.fail(f"has RequestType {request_type!r}, not Create, Update or Delete")
        return cls(
            request_type=request_type,
            response_url=_str(data, "ResponseURL", ctx),
            stack_id=_str(data, "StackId", ctx),
            request_id=_str(data, "RequestId", ctx),
            logical_resource_id=_str(data, "LogicalResourceId", ctx),
            resource_type=_str(data, "ResourceType", ctx),
            physical_resource_id=_opt_str(data, "PhysicalResourceId", ctx),
            service_token=_opt_str(data, "ServiceToken", ctx),
            resource_properties=_typed(data, "ResourceProperties", ctx, dict, required=False) or {},
            old_resource_properties=_typed(
                data, "OldResourceProperties", ctx, dict, required=False
            ),
            event=data,
        )


# -- AWS Config


@dataclass(frozen=True, slots=True)
class ConfigRuleEvent(_View):
    """An AWS Config custom rule evaluation request.

    ``invokingEvent`` and ``ruleParameters`` arrive as JSON text; both are decoded. Report
    the verdict with PutEvaluations and the ``resultToken``:
    :class:`eventflow.aws.ConfigRuleEvaluation` does that in one line.

    Attributes:
        invoking_event: ``invokingEvent``, decoded.
        rule_parameters: ``ruleParameters``, decoded (``{}`` when absent).
        result_token: ``resultToken``, for PutEvaluations.
        config_rule_name: ``configRuleName``.
        config_rule_arn: ``configRuleArn``, or None.
        config_rule_id: ``configRuleId``, or None.
        account_id: ``accountId``.
        event_left_scope: ``eventLeftScope``: the resource is no longer in the rule's scope.
        execution_role_arn: ``executionRoleArn``, or None.
        evaluation_mode: ``evaluationMode`` ("DETECTIVE" or "PROACTIVE"), or None.
        version: ``version``.
        event: The event as delivered.
    """

    _hint = _CONFIG_HINT

    invoking_event: dict[str, Any]
    rule_parameters: dict[str, Any]
    result_token: str
    config_rule_name: str
    config_rule_arn: str | None
    config_rule_id: str | None
    account_id: str
    event_left_scope: bool
    execution_role_arn: str | None
    evaluation_mode: str | None
    version: str
    event: dict[str, Any]

    @property
    def message_type(self) -> str | None:
        """``invokingEvent.messageType``: "ConfigurationItemChangeNotification",
        "OversizedConfigurationItemChangeNotification" or "ScheduledNotification"."""
        value = self.invoking_event.get("messageType")
        return value if isinstance(value, str) else None

    @property
    def configuration_item(self) -> dict[str, Any] | None:
        """``invokingEvent.configurationItem`` (change notifications), or None."""
        value = self.invoking_event.get("configurationItem")
        return value if isinstance(value, dict) else None

    @property
    def idempotency_key(self) -> str:
        """``config:<rule name>:<sha256 of resultToken>`` (the default key)."""
        return _key_of(self.event)

    @classmethod
    def from_dict(cls, event: object) -> ConfigRuleEvent:
        """Read an AWS Config rule event, decoding ``invokingEvent`` and ``ruleParameters``.

        Args:
            event: The event as decoded JSON.

        Returns:
            The typed view.

        Raises:
            InvalidEvent: A field is missing or has the wrong type, or one of the JSON strings
                is not JSON or not an object.
        """
        data, ctx = cls._input(event)
        invoking = _nested_dict(
            _json_in_string(data, "invokingEvent", ctx, required=True),
            "the decoded 'invokingEvent'",
            _CONFIG_HINT,
        )
        params = _json_in_string(data, "ruleParameters", ctx, required=False)
        where = "the decoded 'ruleParameters'"
        rule_parameters = {} if params is None else _nested_dict(params, where, _CONFIG_HINT)
        return cls(
            invoking_event=invoking,
            rule_parameters=rule_parameters,
            result_token=_str(data, "resultToken", ctx),
            config_rule_name=_str(data, "configRuleName", ctx),
            config_rule_arn=_opt_str(data, "configRuleArn", ctx),
            config_rule_id=_opt_str(data, "configRuleId", ctx),
            account_id=_str(data, "accountId", ctx),
            event_left_scope=bool(_opt_bool(data, "eventLeftScope", ctx)),
            execution_role_arn=_opt_str(data, "executionRoleArn", ctx),
            evaluation_mode=_opt_str(data, "evaluationMode", ctx),
            version=_str(data, "version", ctx),
            event=data,
        )


# -- IoT Events


@dataclass(frozen=True, slots=True)
class IoTEventsEvent(_View):
    """The event an AWS IoT Events detector's Lambda action sends (the default payload).

    Attributes:
        event_name: ``event.eventName``, the detector model's event.
        event_time: ``event.eventTime``, milliseconds since the epoch.
        detector_model_name: ``payload.detector.detectorModelName``.
        detector_model_version: ``payload.detector.detectorModelVersion``.
        key_value: ``payload.detector.keyValue`` (the detector instance's key), or None.
        trigger_type: ``payload.eventTriggerDetails.triggerType`` ("Message", "Timer"...).
        input_name: ``payload.eventTriggerDetails.inputName``, or None.
        message_id: ``payload.eventTriggerDetails.messageId``, or None.
        action_execution_id: ``payload.actionExecutionId``, unique per action run.
        state_name: ``payload.state.stateName``.
        variables: ``payload.state.variables``.
        timers: ``payload.state.timers``.
        event: The event as delivered.
    """

    _hint = _IOTEVENTS_HINT

    event_name: str
    event_time: int
    detector_model_name: str
    detector_model_version: str
    key_value: str | None
    trigger_type: str
    input_name: str | None
    message_id: str | None
    action_execution_id: str
    state_name: str
    variables: dict[str, Any]
    timers: dict[str, Any]
    event: dict[str, Any]

    @property
    def idempotency_key(self) -> str:
        """``iotevents:<actionExecutionId>`` (the default key)."""
        return _key_of(self.event)

    @classmethod
    def from_dict(cls, event: object) -> IoTEventsEvent:
        """Read an AWS IoT Events Lambda action event (``{"event": {...}}``).

        Args:
            event: The event as decoded JSON.

        Returns:
            The typed view.

        Raises:
            InvalidEvent: A field is missing or has the wrong type (a custom payload set on
                the action is not this shape: read it as the plain dict it is).
        """
        data, ctx = cls._input(event)
        p = "event.payload."
        return cls(
            event_name=_str(data, "event.eventName", ctx),
            event_time=_typed(data, "event.eventTime", ctx, int, required=True),
            detector_model_name=_str(data, f"{p}detector.detectorModelName", ctx),
            detector_model_version=_str(data, f"{p}detector.detectorModelVersion", ctx),
            key_value=_opt_str(data, f"{p}detector.keyValue", ctx),
            trigger_type=_str(data, f"{p}eventTriggerDetails.triggerType", ctx),
            input_name=_opt_str(data, f"{p}eventTriggerDetails.inputName", ctx),
            message_id=_opt_str(data, f"{p}eventTriggerDetails.messageId", ctx),
            action_execution_id=_str(data, f"{p}actionExecutionId", ctx),
            state_name=_str(data, f"{p}state.stateName", ctx),
            variables=_typed(data, f"{p}state.variables", ctx, dict, required=False) or {},
            timers=_typed(data, f"{p}state.timers", ctx, dict, required=False) or {},
            event=data,
        )
