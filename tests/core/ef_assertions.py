"""Assertions shared by the core tests."""

from __future__ import annotations

from eventflow import Stats


def assert_conserved(s: Stats) -> None:
    """Every accepted event is in exactly one place."""
    assert s.received == (
        s.succeeded + s.failed + s.undelivered + s.queued + s.in_flight + s.scheduled
    ), s
