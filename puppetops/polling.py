"""Waiting for something to be over, by polling, on tenacity.

One shape for every "look again until nothing is left or the time is up" in puppetops: sessions
still open on a load balancer member, servers not yet UP, processes not yet reaped, daemons
not yet answering. The caller decides what a timeout means from what was still left.
"""
from __future__ import annotations

import time
from typing import Callable, TypeVar

import tenacity

T = TypeVar("T")


def wait_while(pending: Callable[[], T], timeout: float, interval: float,
               sleep: Callable[[float], None] = time.sleep) -> T:
    """Call ``pending()`` until it returns something empty (or false) or ``timeout`` seconds
    have passed since the first call; return its last answer (empty unless timed out).

    ``pending`` is called at least once; an exception it raises ends the wait and propagates.
    ``sleep`` waits between calls: a step passes ``ctx.sleep``, so an interrupted run stops
    waiting at once.
    """
    return wait_until(pending, lambda answer: not answer, timeout, interval, sleep)


def wait_until(look: Callable[[], T], done: Callable[[T], bool], timeout: float,
               interval: float, sleep: Callable[[float], None] = time.sleep) -> T:
    """Call ``look()`` until ``done`` holds for its answer or ``timeout`` seconds have passed
    since the first call; return its last answer (the caller tells a timeout by ``done``).
    Called at least once; ``sleep`` and exceptions as in ``wait_while``."""
    return tenacity.Retrying(
        stop=tenacity.stop_after_delay(timeout), wait=tenacity.wait_fixed(interval),
        retry=tenacity.retry_if_result(lambda answer: not done(answer)), sleep=sleep,
        retry_error_callback=lambda state: state.outcome.result(),
    )(look)
