"""Routes in the AWS sources: which handlers an SQS message or an SNS delivery goes to.

``SQSSource`` and ``SNSEndpoint`` take either one handler or a list of
:class:`eventflow.routing.Route`. With routes, each event runs once per matching route,
each run with its own request ID (as several rules or subscriptions would invoke the
function several times); the filter that applies follows the body's kind, as in AWS:

==========================  =============================================================
SQS body / delivery         routes that can match
==========================  =============================================================
EventBridge envelope        ``EventPattern`` routes, on the envelope
SNS notification            ``FilterPolicy`` routes, on its ``MessageAttributes`` (or, with
                            ``scope="MessageBody"``, on its ``Message``)
S3 notification             ``S3KeyFilter`` routes, on its records
any other JSON              none but function routes
==========================  =============================================================

Function routes see every kind, called with the payload the handler would get.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from .._errors import ConfigurationError
from ..events._bodies import BodyKind
from ..routing import EventPattern, Route, Router, S3KeyFilter
from ..sources import Outcome, Settle

if TYPE_CHECKING:
    from .._contracts import AppHost
    from .._handler import Handler

__all__ = ("fan_out", "router_for", "sns_routes", "submit_routed")


def router_for(target: Any, where: str, *, sns: bool = False) -> Router | None:
    """A router when ``target`` is a list of routes; None for a single handler."""
    if not isinstance(target, Sequence) or isinstance(target, str):
        return None
    routes = list(target)
    if not routes or not all(isinstance(r, Route) for r in routes):
        raise ConfigurationError(
            f"{where} takes a handler or a non-empty list of eventflow.routing.Route, "
            f"got {target!r}."
        )
    if sns:
        for route in routes:
            if isinstance(route.match, EventPattern | S3KeyFilter):
                raise ConfigurationError(
                    f"{route!r} can never match here: an SNS endpoint receives SNS "
                    "notifications, which FilterPolicy routes (or functions) select; "
                    "write FilterPolicy(..., scope='MessageBody') to filter on the message."
                )
    return Router(routes)


def _envelope(body: str) -> Mapping[str, Any]:
    data = json.loads(body)
    return data if isinstance(data, dict) else {}


def _routes(router: Router, kind: BodyKind, payload: Any, body: str) -> list[Route]:
    if kind is BodyKind.EVENTBRIDGE:
        return router.for_eventbridge(payload)
    if kind is BodyKind.SNS:
        return sns_routes(router, _envelope(body), payload)
    if kind is BodyKind.S3:
        return router.for_s3(payload)
    return router.for_other(payload)


def sns_routes(router: Router, envelope: Mapping[str, Any], payload: Any) -> list[Route]:
    """The routes of an SNS notification ``envelope``, whose handler payload is ``payload``."""
    return router.for_sns(envelope.get("Message"), envelope.get("MessageAttributes"), payload)


class _FanOut:
    """Settles a message once every route's event has settled: released if any was."""

    __slots__ = ("_left", "_outcome", "_settle")

    def __init__(self, settle: Settle, count: int) -> None:
        self._settle = settle
        self._left = count
        self._outcome = Outcome.SUCCEEDED

    def __call__(self, request_id: str, outcome: Outcome) -> None:
        if outcome is Outcome.RELEASED or self._outcome is Outcome.SUCCEEDED:
            self._outcome = outcome
        self._left -= 1
        if self._left == 0:
            self._settle(request_id, self._outcome)


def fan_out(settle: Settle, count: int) -> Settle:
    """One settle callback for ``count`` events of one message."""
    return settle if count == 1 else _FanOut(settle, count)


async def submit_routed(
    app: AppHost,
    router: Router,
    kind: BodyKind,
    payload: Any,
    body: str,
    settle: Settle,
    submitted: Callable[[], None],
) -> int:
    """Submit one event per matching route; returns how many (0: no route matched).

    Raises:
        AppClosed: The app stopped taking events (some routes may have been submitted).
    """
    routes = _routes(router, kind, payload, body)
    joined = fan_out(settle, len(routes))
    for route in routes:
        handler: str | Handler = route.handler
        await app.submit(handler, payload, settle=joined)
        submitted()
    return len(routes)
