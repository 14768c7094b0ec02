"""``RequestResponse`` invocations: one attempt now, its result or error as the answer.

Not queued, no retries (as in Lambda): the caller waits for a slot under the handler's
cap, then the attempt runs through the same :class:`~eventflow._attempts.AttemptRunner`
(and :class:`~eventflow._idempotent_runs.IdempotentRuns`) as a queued event's, and the
answer carries the tail of the attempt's log lines.
"""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING

from ._attempts import Failed, Succeeded
from ._idempotent_runs import Deduplicated, WaitForKey
from ._payload import to_json
from ._records import marshal_failure
from ._results import InvocationResult
from ._tail import TailLog

if TYPE_CHECKING:
    from ._attempts import AttemptRunner
    from ._event import Event
    from ._idempotent_runs import IdempotentRuns
    from ._outcomes import Outcomes
    from ._workers import WorkerPool

__all__ = ("RequestResponse",)


class RequestResponse:
    """Runs synchronous invocations through the engine's parts."""

    def __init__(
        self,
        *,
        runner: AttemptRunner,
        idempotent: IdempotentRuns,
        outcomes: Outcomes,
        workers: WorkerPool,
    ) -> None:
        self._runner = runner
        self._idem = idempotent
        self._outcomes = outcomes
        self._workers = workers

    async def call(self, ev: Event) -> InvocationResult:
        """Run one attempt of ``ev`` and answer with its result (200), or its error with
        ``function_error="Unhandled"`` (200, as Lambda answers)."""
        rt = ev.rt
        if rt.limit is not None:
            while rt.running >= rt.limit:
                # a synchronous call waits for a slot like any caller of a capped function
                await self._workers.wait_slot(rt)
            rt.running += 1
        lines = [TailLog.start(ev.request_id)]
        tail = TailLog(
            rt.log.bind(request_id=ev.request_id, handler=rt.name, attempt=1), ev.request_id, lines
        )
        started = time.perf_counter()
        try:
            result: Succeeded | Failed | Deduplicated
            if ev.cfg.idempotency is None:
                result = await self._runner.run(ev, rt, tail)
            else:
                while True:
                    step = await self._idem.run(ev, rt, tail)
                    if not isinstance(step, WaitForKey):
                        result = step
                        break
                    # a duplicate in progress: wait for it to settle (here or elsewhere)
                    await self._idem.wait(step)
        finally:
            if rt.limit is not None:
                rt.running -= 1
                self._workers.release_parked(rt)
        duration = time.perf_counter() - started
        if type(result) is not Failed:
            value = result.value
            if value is not None and type(value) is not str:
                try:
                    # what Lambda answers: the result as JSON decodes it (tuples become
                    # lists, int keys strings), the same as a duplicate gets from the store
                    value = json.loads(to_json(value))
                except (TypeError, ValueError, RecursionError) as marshal:
                    result = Failed(marshal_failure(marshal, ev.request_id))
        if type(result) is not Failed:
            self._outcomes.log_success(ev)
            lines.extend(TailLog.end(ev.request_id, duration, None))
            return InvocationResult(
                status_code=200, request_id=ev.request_id, payload=value, log="\n".join(lines)
            )
        self._outcomes.log_failure(ev, result)
        error = result.error
        lines.append(TailLog.unhandled(error))
        lines.extend(TailLog.end(ev.request_id, duration, error.get("errorType")))
        return InvocationResult(
            status_code=200,
            request_id=ev.request_id,
            payload=error,
            function_error="Unhandled",
            log="\n".join(lines),
        )
