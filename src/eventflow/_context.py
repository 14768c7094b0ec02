"""The ``context`` argument of a handler, shaped like the Lambda Python runtime's."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._event import Event

__all__ = ("Client", "ClientContext", "Context", "new_context")

# Lambda's longest allowed timeout; what a handler without a timeout is told it has left.
NO_TIMEOUT_REMAINING_MS = 900_000


class Client:
    """The calling app, as a caller's ``ClientContext`` describes it (fields may be None)."""

    __slots__ = (
        "app_package_name",
        "app_title",
        "app_version_code",
        "app_version_name",
        "installation_id",
    )
    app_package_name: str | None
    app_title: str | None
    app_version_code: str | None
    app_version_name: str | None
    installation_id: str | None

    def __init__(self, fields: dict[str, Any]) -> None:
        for name in self.__slots__:
            setattr(self, name, fields.get(name))


class ClientContext:
    """A synchronous caller's ``ClientContext``, as Lambda's Python runtime gives it.

    Attributes:
        client: A :class:`Client`, or None.
        custom: The caller's ``custom`` mapping, or None.
        env: The caller's ``env`` mapping, or None.
    """

    __slots__ = ("client", "custom", "env")

    def __init__(self, fields: dict[str, Any]) -> None:
        client = fields.get("client")
        self.client = Client(client) if isinstance(client, dict) else client
        self.custom = fields.get("custom")
        self.env = fields.get("env")


class Context:
    """What a handler gets as its second argument, as in AWS Lambda's Python runtime.

    Attributes:
        aws_request_id: The event's request ID, the same on every attempt.
        function_name: The handler's name.
        function_version: Always ``"$LATEST"``.
        invoked_function_arn: ``arn:aws:lambda:<region>:<account>:function:<name>``.
        attempt: 1 on the first attempt, 2 on the first retry, ...; each attempt has its
            own context, which never changes (a timed-out attempt's thread that still runs
            keeps reading its own attempt number).
        log: A structlog logger bound with ``request_id``, ``handler`` and ``attempt``.
        client_context: The :class:`ClientContext` a synchronous (``RequestResponse``) caller
            passed, or None (always None for asynchronous invocations, as in Lambda).
    """

    __slots__ = ("_attempt", "_deadline", "_event", "_log")
    _event: Event
    _attempt: int
    _deadline: float | None
    _log: Any

    function_version = "$LATEST"
    identity = None

    @property
    def aws_request_id(self) -> str:
        return self._event.request_id

    @property
    def function_name(self) -> str:
        return self._event.rt.name

    @property
    def invoked_function_arn(self) -> str:
        return self._event.rt.arn

    @property
    def client_context(self) -> ClientContext | None:
        fields = self._event.client_context
        return None if fields is None else ClientContext(fields)

    @property
    def attempt(self) -> int:
        return self._attempt

    @property
    def log(self) -> Any:
        log = self._log
        if log is None:
            ev = self._event
            log = self._log = ev.rt.log.bind(
                request_id=ev.request_id, handler=ev.rt.name, attempt=self._attempt
            )
        return log

    def get_remaining_time_in_millis(self) -> int:
        """Milliseconds left before the attempt times out (900,000 without a timeout)."""
        if self._deadline is None:
            return NO_TIMEOUT_REMAINING_MS
        left = self._deadline - self._event.rt.clock.now()
        return max(0, math.floor(left * 1000))

    def __repr__(self) -> str:
        return (
            f"<Context request_id={self.aws_request_id!r} function_name={self.function_name!r} "
            f"attempt={self.attempt}>"
        )


_object_new = object.__new__


def new_context(event: Event, deadline: float | None, log: Any = None) -> Context:
    """The context of ``event``'s attempt under way, which times out at clock time
    ``deadline`` (``None``: never), with ``log`` bound already if the caller has it.

    The one way to make a :class:`Context` (it has no ``__init__``): a function call costs
    about half of a class call, whose ``__init__`` runs in a nested interpreter loop, and
    the worker makes one per attempt.
    """
    ctx: Context = _object_new(Context)
    ctx._event = event
    ctx._attempt = event.attempts  # a snapshot: the event moves on to later attempts
    ctx._deadline = deadline
    ctx._log = log
    return ctx
