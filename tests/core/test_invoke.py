"""invoke(), invoke_nowait() and the handler registry."""

from __future__ import annotations

import re
import threading

import pytest
from ef_assertions import assert_conserved

import eventflow
from eventflow.testing import VirtualClock

UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[0-9a-f]{4}-[0-9a-f]{12}$")


async def test_event_returns_202_with_uuid_request_id_and_runs() -> None:
    seen: list[tuple[object, str]] = []

    @eventflow.handler
    async def demo_lambda(event: dict[str, str], context: eventflow.Context) -> str:
        seen.append((event, context.aws_request_id))
        return event["key1"]

    async with eventflow.App() as app:
        accepted = await app.invoke(demo_lambda, {"key1": "value1"})
        assert isinstance(accepted, eventflow.Accepted)
        assert accepted.status_code == 202
        assert UUID_RE.match(accepted.request_id)
        await app.drain()
        stats = app.stats()
    assert seen == [({"key1": "value1"}, accepted.request_id)]
    assert stats.received == 1 and stats.succeeded == 1
    assert_conserved(stats)


async def test_request_ids_are_unique() -> None:
    @eventflow.handler
    async def h(event: object, context: eventflow.Context) -> None:
        return None

    async with eventflow.App() as app:
        ids = {app.invoke_nowait(h, i).request_id for i in range(5000)}
        await app.drain()
    assert len(ids) == 5000


async def test_request_response_returns_result_or_lambda_error_object() -> None:
    @eventflow.handler
    async def echo(event: dict[str, str], context: eventflow.Context) -> str:
        if event.get("fail"):
            raise KeyError("missing")
        return event["key1"]

    async with eventflow.App() as app:
        ok = await app.invoke(echo, {"key1": "v"}, invocation_type="RequestResponse")
        bad = await app.invoke(echo, {"fail": "yes"}, invocation_type="RequestResponse")
        stats = app.stats()
    assert isinstance(ok, eventflow.InvocationResult)
    assert (ok.status_code, ok.payload, ok.function_error) == (200, "v", None)
    assert bad.status_code == 200 and bad.function_error == "Unhandled"
    assert bad.payload["errorType"] == "KeyError"
    assert bad.payload["errorMessage"] == "'missing'"
    assert bad.payload["requestId"] == bad.request_id
    assert any("raise KeyError" in line for line in bad.payload["stackTrace"])
    # synchronous calls are not events in the queue
    assert stats.received == 0


async def test_request_response_marshal_error_for_unserialisable_result() -> None:
    @eventflow.handler
    async def returns_set(event: object, context: eventflow.Context) -> set[int]:
        return {1, 2}

    async with eventflow.App() as app:
        result = await app.invoke(returns_set, {}, invocation_type="RequestResponse")
    assert result.function_error == "Unhandled"
    assert result.payload["errorType"] == "Runtime.MarshalError"
    assert "not JSON serializable" in result.payload["errorMessage"]


async def test_dry_run_validates_without_running() -> None:
    ran = []

    @eventflow.handler
    async def h(event: object, context: eventflow.Context) -> None:
        ran.append(event)

    async with eventflow.App() as app:
        result = await app.invoke(h, {"a": 1}, invocation_type="DryRun")
        assert app.invoke_nowait(h, {"a": 1}, invocation_type="DryRun").status_code == 204
        with pytest.raises(eventflow.UnknownHandler):
            await app.invoke("nope", {}, invocation_type="DryRun")
    assert result.status_code == 204 and ran == []


async def test_dry_run_before_start_and_after_stop_raises_app_closed() -> None:
    @eventflow.handler
    async def h(event: object, context: eventflow.Context) -> None:
        return None

    app = eventflow.App(handlers=[h])
    with pytest.raises(eventflow.AppClosed, match="has not started"):
        app.invoke_nowait(h, {}, invocation_type="DryRun")
    async with app:
        pass
    with pytest.raises(eventflow.AppClosed, match="shutting down"):
        await app.invoke(h, {}, invocation_type="DryRun")


async def test_unknown_handler_and_invalid_payload_queue_nothing() -> None:
    @eventflow.handler
    async def known(event: object, context: eventflow.Context) -> None:
        return None

    async with eventflow.App() as app:
        with pytest.raises(eventflow.UnknownHandler, match=r"'missing'.*serves: known"):
            await app.invoke("missing", {})
        with pytest.raises(eventflow.InvalidPayload, match="not JSON-serialisable"):
            await app.invoke(known, {"when": object()})
        with pytest.raises(eventflow.InvalidPayload):
            app.invoke_nowait(known, {"nan": float("nan")})
        with pytest.raises(eventflow.InvalidPayload):
            await app.invoke(known, {1: "non-string key is fine for json"} | {"s": {1, 2}})
        with pytest.raises(eventflow.ConfigurationError, match="invocation_type"):
            await app.invoke(known, {}, invocation_type="Async")  # type: ignore[call-overload]
        with pytest.raises(eventflow.ConfigurationError, match="RequestResponse"):
            app.invoke_nowait(known, {}, invocation_type="RequestResponse")
        assert app.stats().received == 0


async def test_payloads_json_accepts() -> None:
    got: list[object] = []

    @eventflow.handler
    async def h(event: object, context: eventflow.Context) -> None:
        got.append(event)

    payloads: list[object] = [None, 1, 2.5, "s", True, [1, [2, {"a": None}]], {"deep": {"x": [1]}}]
    async with eventflow.App() as app:
        for p in payloads:
            await app.invoke(h, p)
        await app.drain()
    assert sorted(map(repr, got)) == sorted(map(repr, payloads))


async def test_app_closed_before_start_and_after_stop() -> None:
    @eventflow.handler
    async def h(event: object, context: eventflow.Context) -> None:
        return None

    app = eventflow.App()
    with pytest.raises(eventflow.AppClosed, match="has not started"):
        await app.invoke(h, {})
    async with app:
        pass
    with pytest.raises(eventflow.AppClosed, match="shutting down"):
        app.invoke_nowait(h, {})
    with pytest.raises(RuntimeError, match="only once"):
        async with app:
            pass


async def test_context_is_lambda_shaped() -> None:
    clock = VirtualClock()
    seen: dict[str, object] = {}

    @eventflow.handler(name="resize-image", timeout=2.5)
    async def resize(event: object, context: eventflow.Context) -> None:
        seen.update(
            request_id=context.aws_request_id,
            name=context.function_name,
            arn=context.invoked_function_arn,
            attempt=context.attempt,
            version=context.function_version,
            remaining=context.get_remaining_time_in_millis(),
        )
        await clock.sleep(1.0)
        seen["remaining_later"] = context.get_remaining_time_in_millis()

    async with eventflow.App(clock=clock, region="eu-west-2", account_id="123456789012") as app:
        accepted = await app.invoke("resize-image", {})
        async with clock.autojump():
            await app.drain()
    assert seen == {
        "request_id": accepted.request_id,
        "name": "resize-image",
        "arn": "arn:aws:lambda:eu-west-2:123456789012:function:resize-image",
        "attempt": 1,
        "version": "$LATEST",
        "remaining": 2500,
        "remaining_later": 1500,
    }


async def test_plain_def_handler_runs_in_a_thread_unchanged() -> None:
    threads: list[str] = []

    def lambda_handler(event: dict[str, str], context: eventflow.Context) -> str:
        threads.append(threading.current_thread().name)
        if event.get("fail"):
            raise Exception("Simulating error")
        return event["key1"]

    handler = eventflow.handler(lambda_handler)
    context = eventflow.Context.__new__(eventflow.Context)  # a unit test's stand-in
    assert handler({"key1": "direct"}, context) == "direct"  # still callable as before
    threads.clear()
    async with eventflow.App() as app:
        ok = await app.invoke(handler, {"key1": "v"}, invocation_type="RequestResponse")
        bad = await app.invoke(handler, {"fail": "1"}, invocation_type="RequestResponse")
        await app.invoke(handler, {"key1": "async path"})
        await app.drain()
        stats = app.stats()
    assert ok.payload == "v"
    assert bad.payload["errorMessage"] == "Simulating error"
    assert all(name != threading.main_thread().name for name in threads)
    assert stats.succeeded == 1


async def test_registries_default_app_and_explicit() -> None:
    @eventflow.handler
    async def global_one(event: object, context: eventflow.Context) -> None:
        return None

    app = eventflow.App()

    @app.handler(max_retries=0)
    async def app_only(event: object, context: eventflow.Context) -> None:
        return None

    assert set(app.handlers) == {"global_one", "app_only"}
    explicit = eventflow.App(handlers=[global_one])
    assert set(explicit.handlers) == {"global_one"}
    other = eventflow.App()
    assert set(other.handlers) == {"global_one"}
    async with explicit:
        with pytest.raises(eventflow.UnknownHandler):
            await explicit.invoke(app_only, {})
    async with app:
        with pytest.raises(eventflow.ConfigurationError, match="after the app has started"):

            @app.handler
            async def too_late(event: object, context: eventflow.Context) -> None:
                return None


def test_duplicate_names_are_refused() -> None:
    @eventflow.handler
    async def same(event: object, context: eventflow.Context) -> None:
        return None

    with pytest.raises(eventflow.ConfigurationError, match="already registered"):

        @eventflow.handler(name="same")
        async def other(event: object, context: eventflow.Context) -> None:
            return None


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"max_retries": -1}, "max_retries must be an integer >= 0"),
        ({"max_retries": 1.5}, "max_retries must be an integer >= 0"),
        ({"retry_delays": (60.0, 0)}, r"retry_delays\[1\] must be a positive"),
        ({"retry_delays": ()}, "retry_delays must hold at least one delay"),
        ({"retry_delays": "60"}, "retry_delays must be a sequence"),
        ({"max_event_age": 0}, "max_event_age must be a positive"),
        ({"max_event_age": float("inf")}, "max_event_age must be a positive, finite"),
        ({"timeout": -1}, "timeout must be a positive"),
        ({"timeout": "3"}, "timeout must be a positive number of seconds"),
        ({"concurrency": 0}, "concurrency must be an integer >= 1"),
        ({"dead_letter": "arn:aws:sqs:x"}, "dead_letter must be a sink"),
        ({"on_success": object()}, "on_success must be a sink"),
        ({"on_failure": 3}, "on_failure must be a sink"),
        ({"name": ""}, "name must be a non-empty string"),
    ],
)
def test_invalid_handler_options_raise_configuration_error(
    options: dict[str, object], message: str
) -> None:
    with pytest.raises(eventflow.ConfigurationError, match=message) as info:

        @eventflow.handler(**options)  # type: ignore[call-overload, untyped-decorator]
        async def h(event: object, context: eventflow.Context) -> None:
            return None

    assert isinstance(info.value, ValueError)


def test_generous_values_beyond_lambda_ranges_are_accepted() -> None:
    @eventflow.handler(max_retries=10, retry_delays=(0.001,), max_event_age=1e6, timeout=3600)
    async def h(event: object, context: eventflow.Context) -> None:
        return None

    assert h.max_retries == 10 and h.retry_delay(7) == 0.001


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"queue_size": 0}, "queue_size must be an integer >= 1"),
        ({"concurrency": -5}, "concurrency must be an integer >= 1"),
        ({"shutdown_timeout": 0}, "shutdown_timeout must be a positive"),
        ({"tick": -0.01}, "tick must be a positive"),
        ({"spill": "file.jsonl"}, "spill must be a sink"),
        ({"clock": object()}, "clock must have now"),
        ({"handlers": [lambda e, c: None]}, "decorated with @eventflow.handler"),
    ],
)
def test_invalid_app_options(options: dict[str, object], message: str) -> None:
    with pytest.raises(eventflow.ConfigurationError, match=message):
        eventflow.App(**options)  # type: ignore[arg-type]


async def test_request_response_log_is_lambda_shaped() -> None:
    @eventflow.handler
    async def chatty(event: dict[str, bool], context: eventflow.Context) -> str:
        context.log.info("resizing", size=3)
        if event.get("fail"):
            raise ValueError("uh oh")
        return "ok"

    async with eventflow.App() as app:
        ok = await app.invoke(chatty, {}, invocation_type="RequestResponse")
        bad = await app.invoke(chatty, {"fail": True}, invocation_type="RequestResponse")
    lines = ok.log.splitlines()
    assert lines[0] == f"START RequestId: {ok.request_id} Version: $LATEST"
    assert "resizing size=3" in lines[1] and ok.request_id in lines[1]
    assert lines[-2] == f"END RequestId: {ok.request_id}"
    assert lines[-1].startswith(f"REPORT RequestId: {ok.request_id}\tDuration: ")
    # the Python runtime's format: a trailing tab, and no status for the handler's own error
    assert re.fullmatch(
        rf"REPORT RequestId: {bad.request_id}\tDuration: \d+\.\d\d ms\tBilled Duration: \d+ ms"
        r"\tMemory Size: 128 MB\tMax Memory Used: [1-9]\d* MB\t",
        bad.log.splitlines()[-1],
    )
    error = bad.log.split("\n[ERROR] ValueError: uh oh\nTraceback (most recent call last):\n")
    assert len(error) == 2
    # the trace's indentation is no-break spaces, as Lambda's runtime writes it
    assert error[1].startswith("\u00a0\u00a0File ") and "in chatty" in error[1]
