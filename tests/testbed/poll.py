"""Waiting in tests: one loop for every "until this is true". Intervals differ (a worker's log line: 50 ms; a
guest's console: 1 s; a mirror snapshot: seconds); the failure always names what was awaited, how long and the
last value seen."""

from __future__ import annotations

import time
from typing import Callable, TypeVar

T = TypeVar("T")


def wait_for(predicate: Callable[[], T], timeout: float, what: str, interval: float = 1.0,
             details: Callable[[], str] | None = None) -> T:
    """The first true value of ``predicate()``, asked every ``interval`` s and once more at the deadline;
    AssertionError after ``timeout`` s, with ``details()`` (e.g. a console's tail) when given."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            break
        time.sleep(min(interval, max(0.0, deadline - time.monotonic())))
    extra = "; " + details() if details else ""
    raise AssertionError("timed out after %gs waiting for %s (last: %r)%s" % (timeout, what, value, extra))


def seconds_until(predicate: Callable[[], object], timeout: float, what: str, interval: float = 1.0) -> float:
    """Seconds until ``predicate()`` is true (a recovery or replication figure); AssertionError as wait_for."""
    t0 = time.monotonic()
    wait_for(predicate, timeout, what, interval)
    return time.monotonic() - t0
