"""How ``eventflow serve`` finds SNS endpoints: module attributes, served at /sns/<name>."""

from __future__ import annotations

from types import ModuleType

import pytest

import eventflow
from eventflow._cli_common import CommandError
from eventflow._cli_serve import find_sns_endpoints, is_loopback
from eventflow.aws import SNSEndpoint


async def _noop(event: object, context: eventflow.Context) -> None:
    return None


def _module(app: eventflow.App, **attributes: object) -> ModuleType:
    module = ModuleType("service")
    module.app = app  # type: ignore[attr-defined]
    for name, value in attributes.items():
        setattr(module, name, value)
    return module


def test_sns_endpoints_are_found_by_attribute_name() -> None:
    handler = eventflow.Handler(_noop, name="on-order")
    app = eventflow.App(handlers=[handler])
    orders, refunds = SNSEndpoint(app, handler), SNSEndpoint(app, "on-order")
    found = find_sns_endpoints(_module(app, orders=orders, refunds=refunds, other=1), app)
    assert found == {"/sns/orders": orders, "/sns/refunds": refunds}


def test_an_endpoint_of_another_app_or_handler_is_refused() -> None:
    handler = eventflow.Handler(_noop, name="on-order")
    app, other = eventflow.App(handlers=[handler]), eventflow.App(handlers=[handler])
    with pytest.raises(CommandError, match="belongs to another App"):
        find_sns_endpoints(_module(app, orders=SNSEndpoint(other, handler)), app)
    with pytest.raises(CommandError, match="'missing', which the App does not serve"):
        find_sns_endpoints(_module(app, orders=SNSEndpoint(app, "missing")), app)


@pytest.mark.parametrize(
    ("host", "loopback"),
    [("127.0.0.1", True), ("127.0.0.2", True), ("::1", True), ("localhost", True),
     ("0.0.0.0", False), ("::", False), ("10.0.0.5", False), ("example.com", False)],
)  # fmt: skip
def test_only_loopback_addresses_count_as_local(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


async def test_router_sends_sns_paths_to_their_endpoint_and_the_rest_to_the_lambda_api() -> None:
    import httpx

    from eventflow._cli_serve import Router
    from eventflow.http import LambdaAPI

    handler = eventflow.Handler(_noop, name="on-order")
    app = eventflow.App(handlers=[handler])
    router = Router(LambdaAPI(app), {"/sns/orders": SNSEndpoint(app, handler)})
    async with app:
        transport = httpx.ASGITransport(app=router)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            sns = await client.post("/sns/orders", content=b'{"Type": "Notification"}')
            functions = await client.get("/2015-03-31/functions/")
    assert sns.status_code == 400 and "sns" in sns.text.lower()  # the endpoint's own refusal
    assert functions.status_code == 200
    assert [f["FunctionName"] for f in functions.json()["Functions"]] == ["on-order"]


async def test_the_router_lifespan_enters_the_sns_endpoints_for_their_fetches() -> None:
    from eventflow._cli_serve import Router
    from eventflow.http import LambdaAPI
    from http_support import serve_asgi

    handler = eventflow.Handler(_noop, name="on-order")
    app = eventflow.App(handlers=[handler])
    endpoint = SNSEndpoint(app, handler)
    async with app, serve_asgi(Router(LambdaAPI(app), {"/sns/orders": endpoint})):
        # while served, the endpoint is entered: its fetches run in its own task group
        with pytest.raises(RuntimeError, match="entered already"):
            async with endpoint:
                pass
    # the server's shutdown left it: it can be entered again
    async with endpoint:
        pass
