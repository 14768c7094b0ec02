"""Routing: 100 EventBridge-style routes over 100,000 events, compiled against one by one.

Each route names a source and a detail-type, and most add a condition on the detail (an
exact value, a prefix, a numeric range, anything-but, a suffix with equals-ignore-case).
The events are EventBridge envelopes spread over those sources and types (a share of them
matching no route). In the same run the benchmark measures:

* compiled: ``eventflow.routing.Router`` with the 100 routes (one walk of each event);
* one by one: each route's pattern evaluated in turn with the plain reference matcher;
* one route: the Router with a single route, over the same events.

It checks that both ways choose the same routes for every event, and prints the ratios
last: one-by-one / compiled (target >= 10) and 100 routes / 1 route (target <= 3). Times
are CPU seconds of this process (``time.process_time``), so that other load on a shared
machine does not skew the ratios; the compiled runs take the best of three, the one-by-one
run (40 times longer) is measured once.

    python benchmarks/routing.py [--routes 100] [--events 100000] [--seed 7]
"""

from __future__ import annotations

import argparse
import random
import time
from typing import Any

from eventflow._matcher import reference_matches
from eventflow._patterns import compile_pattern
from eventflow.routing import EventPattern, Route, Router

SOURCES = 25  # 20 with routes, 5 without
TYPES = 5


def make_pattern(n: int) -> dict[str, Any]:
    pattern: dict[str, Any] = {
        "source": [f"com.example.service{n % 20}"],
        "detail-type": [f"Event Type {n // 20}"],
    }
    kind = n % 6
    if kind == 1:
        pattern["detail"] = {"status": ["shipped", "delivered"]}
    elif kind == 2:
        pattern["detail"] = {"key": [{"prefix": f"tenant-{n % 7}/"}]}
    elif kind == 3:
        pattern["detail"] = {"amount": [{"numeric": [">", n * 10, "<=", n * 10 + 500]}]}
    elif kind == 4:
        pattern["detail"] = {"status": [{"anything-but": ["cancelled", "failed"]}]}
    elif kind == 5:
        pattern["detail"] = {"key": [{"suffix": {"equals-ignore-case": ".JPG"}}]}
    return pattern


def make_event(rng: random.Random, n: int) -> dict[str, Any]:
    extension = rng.choice([".jpg", ".JPG", ".png", ".txt"])
    return {
        "version": "0",
        "id": f"00000000-0000-4000-8000-{n:012d}",
        "detail-type": f"Event Type {rng.randrange(TYPES)}",
        "source": f"com.example.service{rng.randrange(SOURCES)}",
        "account": "123456789012",
        "time": "2026-01-02T03:04:05Z",
        "region": "us-east-1",
        "resources": [f"arn:aws:s3:::bucket-{rng.randrange(10)}"],
        "detail": {
            "status": rng.choice(["created", "shipped", "delivered", "cancelled", "failed"]),
            "key": f"tenant-{rng.randrange(7)}/photos/{n}{extension}",
            "amount": rng.randrange(0, 1500),
            "items": [{"sku": f"SKU-{rng.randrange(100)}", "qty": rng.randrange(1, 5)}],
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--routes", type=int, default=100)
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()

    rng = random.Random(args.seed)
    patterns = [make_pattern(n) for n in range(args.routes)]
    routes = [Route(f"handler{n}", EventPattern(p)) for n, p in enumerate(patterns)]
    events = [make_event(rng, n) for n in range(args.events)]
    router = Router(routes)
    single = Router(routes[:1])
    plain = [compile_pattern(p) for p in patterns]

    def best_of_three(router: Router) -> tuple[float, list[int]]:
        # the compiled runs are short: take the best of three, after a warm-up pass
        choice = [len(router.for_eventbridge(e)) for e in events[:1000]]
        best = float("inf")
        for _ in range(3):
            t0 = time.process_time()
            choice = [len(router.for_eventbridge(e)) for e in events]
            best = min(best, time.process_time() - t0)
        return best, choice

    compiled_s, compiled_choice = best_of_three(router)
    single_s, _ = best_of_three(single)

    t0 = time.process_time()
    one_by_one_choice = [sum(1 for p in plain if reference_matches(p, e)) for e in events]
    one_by_one_s = time.process_time() - t0

    # the same routes, chosen both ways (checked outside the timed loops)
    for e in events[:: max(1, len(events) // 2000)]:
        chosen = [r.handler for r in router.for_eventbridge(e)]
        assert chosen == [routes[n].handler for n, p in enumerate(plain) if reference_matches(p, e)]
    assert compiled_choice == one_by_one_choice
    matched = sum(1 for c in compiled_choice if c)
    runs = sum(compiled_choice)

    per_event = 1e6 / len(events)
    print(
        f"{len(routes)} routes, {len(events):,} events: {matched:,} matched a route "
        f"({runs:,} route runs), {len(events) - matched:,} matched none"
    )
    print(
        f"compiled, {len(routes)} routes:     {compiled_s:7.2f} s  "
        f"({compiled_s * per_event:6.2f} us/event)"
    )
    print(
        f"one by one (reference):   {one_by_one_s:7.2f} s  "
        f"({one_by_one_s * per_event:6.2f} us/event)"
    )
    print(f"compiled, 1 route:        {single_s:7.2f} s  ({single_s * per_event:6.2f} us/event)")
    print(f"ratio one-by-one / compiled: {one_by_one_s / compiled_s:.1f}x (target >= 10)")
    print(f"ratio 100 routes / 1 route:  {compiled_s / single_s:.2f}x (target <= 3)")


if __name__ == "__main__":
    main()
