"""The ``eventflow`` command: help, generate-event, invoke, serve's refusal and bench."""

from __future__ import annotations

import json
from urllib.parse import unquote_plus

import pytest

from cli_support import Cli
from eventflow.events import EventBridgeEvent, S3Event, SNSEvent

HELP = {
    ("serve",): [
        "MODULE:APP",
        "--host",
        "--port",
        "--credentials-env",
        "--insecure",
        "--log-format",
    ],
    ("invoke",): ["MODULE:APP", "HANDLER", "--payload", "--invocation-type", "--log-type"],
    ("generate-event",): [
        "s3",
        "sns",
        "eventbridge",
        "scheduled",
        "cloudwatch-logs",
        "codecommit",
        "codepipeline",
        "ses",
        "cloudformation",
        "config",
        "iot-events",
        "iot-rule",
    ],
    ("generate-event", "cloudwatch-logs"): [
        "--log-group",
        "--log-stream",
        "--message",
        "--control",
    ],
    ("generate-event", "config"): ["--rule", "--resource-type", "--rule-parameters", "--scheduled"],
    ("generate-event", "s3", "put"): ["--bucket", "--key", "--size", "--region"],
    ("generate-event", "s3", "delete"): ["--bucket", "--key", "--region"],
    ("generate-event", "sns"): ["--topic-arn", "--message", "--subject", "--attribute"],
    ("generate-event", "eventbridge"): ["--source", "--detail-type", "--detail", "--account"],
    ("generate-event", "scheduled"): ["--rule", "--region", "--account"],
    ("bench", "fanout"): ["--events", "--latency", "--concurrency"],
    ("demo",): ["--events", "--retry-delays", "--dead-letters", "--durable", "--queue-file"],
    ("redrive",): ["--from-jsonl", "--from-sqs", "--handler", "--max", "--dry-run", "--wait"],
}


@pytest.mark.parametrize("command", list(HELP), ids=" ".join)
def test_every_command_has_help_naming_its_options(cli: Cli, command: tuple[str, ...]) -> None:
    result = cli(*command, "--help")
    assert result.returncode == 0, result.stderr
    for option in HELP[command]:
        assert option in result.stdout, f"{option} missing from {' '.join(command)} --help"


@pytest.mark.parametrize("kind", ["put", "delete"])
def test_generate_s3_event_parses_and_its_key_round_trips(cli: Cli, kind: str) -> None:
    key = "in/red flower (1)+copy é.jpg"
    result = cli("generate-event", "s3", kind, "--bucket", "photos", "--key", key)
    assert result.returncode == 0, result.stderr
    event = json.loads(result.stdout)
    raw_key = event["Records"][0]["s3"]["object"]["key"]
    assert " " not in raw_key and unquote_plus(raw_key) == key  # form-encoded, as S3 sends it
    record = S3Event.from_dict(event).records[0]
    assert (record.bucket, record.key) == ("photos", key)
    if kind == "put":
        assert record.event_name == "ObjectCreated:Put" and record.size == 1024
    else:
        assert record.event_name == "ObjectRemoved:Delete" and record.size is None


def test_generate_sns_event_parses(cli: Cli) -> None:
    topic = "arn:aws:sns:eu-west-1:111122223333:orders"
    result = cli(
        "generate-event", "sns", "--topic-arn", topic, "--message", '{"orderId": 42}',
        "--attribute", "kind=created",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    record = SNSEvent.from_dict(json.loads(result.stdout)).records[0]
    assert record.topic_arn == topic and record.json() == {"orderId": 42}
    assert record.subject is None
    assert record.message_attributes["kind"] == {"Type": "String", "Value": "created"}


def test_generate_eventbridge_event_parses(cli: Cli) -> None:
    result = cli(
        "generate-event", "eventbridge", "--source", "com.example.orders",
        "--detail-type", "Order Placed", "--detail", '{"orderId": 7}', "--account", "111122223333",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    event = EventBridgeEvent.from_dict(json.loads(result.stdout))
    assert (event.source, event.detail_type, event.detail) == (
        "com.example.orders",
        "Order Placed",
        {"orderId": 7},
    )


def test_generate_scheduled_event_parses(cli: Cli) -> None:
    result = cli("generate-event", "scheduled", "--rule", "nightly", "--region", "us-east-2")
    assert result.returncode == 0, result.stderr
    event = EventBridgeEvent.from_dict(json.loads(result.stdout))
    assert (event.source, event.detail_type, event.detail) == ("aws.events", "Scheduled Event", {})
    assert event.resources == ("arn:aws:events:us-east-2:123456789012:rule/nightly",)


def test_generate_event_rejects_a_detail_that_is_not_json(cli: Cli) -> None:
    result = cli("generate-event", "eventbridge", "--detail", "{oops")
    assert result.returncode == 2
    assert "--detail must be a JSON object" in result.stderr


def test_invoke_request_response_prints_the_result(cli: Cli) -> None:
    result = cli(
        "invoke", "examples.demo_lambda:app", "demo-lambda", "--payload", '{"key1": "value1"}'
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == "value1"


def test_invoke_request_response_function_error_exits_1_with_tail(cli: Cli) -> None:
    result = cli(
        "invoke", "examples.demo_lambda:app", "demo-lambda",
        "--payload", '{"key1": "v", "fail": true}', "--log-type", "Tail",
    )  # fmt: skip
    assert result.returncode == 1
    error = json.loads(result.stdout)
    assert (error["errorType"], error["errorMessage"]) == ("Exception", "Simulating error")
    assert f"START RequestId: {error['requestId']}" in result.stderr
    assert f"REPORT RequestId: {error['requestId']}" in result.stderr


def test_invoke_event_prints_the_request_id_and_the_outcome(cli: Cli) -> None:
    result = cli(
        "invoke", "examples.demo_lambda:app", "demo-lambda",
        "--payload", '{"key1": "v"}', "--invocation-type", "Event",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    accepted, outcome = (json.loads(line) for line in result.stdout.splitlines())
    assert accepted["StatusCode"] == 202
    assert outcome == {"RequestId": accepted["RequestId"], "Outcome": "succeeded", "Attempts": 1}
    assert "1/1" in result.stderr  # the progress line


def test_invoke_reads_the_payload_from_a_file(cli: Cli, tmp_path: object) -> None:
    from pathlib import Path

    path = Path(str(tmp_path)) / "event.json"
    path.write_text('{"key1": "from a file"}')
    result = cli("invoke", "examples.demo_lambda:app", "demo-lambda", "--payload", f"@{path}")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == "from a file"


@pytest.mark.parametrize(
    ("args", "sentence"),
    [
        (["no_such_module:app", "h"], "Could not import module 'no_such_module'"),
        (["examples.demo_lambda:nope", "h"], "has no attribute 'nope'"),
        (["examples.demo_lambda:demo_lambda", "h"], "is a Handler, not an eventflow.App"),
        (["examples.demo_lambda", "h"], "Expected MODULE:APP"),
        (["examples.demo_lambda:app", "nope"], "no handler named 'nope'; it serves: demo-lambda"),
        (["examples.demo_lambda:app", "demo-lambda", "--payload", "{x"], "is not valid JSON"),
        (["examples.demo_lambda:app", "demo-lambda", "--payload", "@/no/such/file"], "Cannot read"),
    ],
)
def test_invoke_usage_errors_exit_2_with_a_sentence(
    cli: Cli, args: list[str], sentence: str
) -> None:
    result = cli("invoke", *args)
    assert result.returncode == 2
    assert sentence in result.stderr
    assert result.stderr.rstrip().endswith(".")
    assert "Traceback" not in result.stderr


def test_serve_refuses_a_public_address_without_credentials(cli: Cli) -> None:
    result = cli("serve", "examples.demo_lambda:app", "--host", "0.0.0.0", "--port", "1")
    assert result.returncode == 2
    assert "Refusing to serve on '0.0.0.0' without credentials" in result.stderr
    assert "--insecure" in result.stderr


def test_serve_credentials_env_needs_both_variables(cli: Cli) -> None:
    result = cli("serve", "examples.demo_lambda:app", "--credentials-env")
    assert result.returncode == 2
    assert "EVENTFLOW_ACCESS_KEY_ID and EVENTFLOW_SECRET_ACCESS_KEY" in result.stderr


def test_serve_bad_app_exits_2(cli: Cli) -> None:
    result = cli("serve", "examples.demo_lambda:nope")
    assert result.returncode == 2
    assert "has no attribute 'nope'" in result.stderr


def test_bench_fanout_prints_its_summary(cli: Cli) -> None:
    result = cli("bench", "fanout", "--events", "2000", "--latency", "0.01", "--concurrency", "200")
    assert result.returncode == 0, result.stderr
    assert "succeeded       2000 of 2000" in result.stdout
    for figure in ("events/s", "of ideal", "ideal 0.100 s", "p50", "p99"):
        assert figure in result.stdout
    assert "2000/2000" in result.stderr  # the progress bar's final line
