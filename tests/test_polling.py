"""polling.wait_while: the one shape of every "look again until nothing is left" wait."""
from __future__ import annotations

import signal

import pytest

from puppetops.errors import Interrupted
from puppetops.polling import wait_while


def test_it_returns_empty_once_nothing_is_left_and_sleeps_between_looks():
    left, slept = [["a", "b"], ["b"], []], []
    assert wait_while(lambda: left.pop(0), timeout=60, interval=0.5, sleep=slept.append) == []
    assert slept == [0.5, 0.5] and left == []


def test_at_the_timeout_it_returns_what_was_still_left():
    looks = []
    assert wait_while(lambda: looks.append(1) or {"c1": "DRAIN"}, timeout=0, interval=0.01) == {"c1": "DRAIN"}
    assert looks == [1]  # looked once: the caller always gets a real answer


def test_an_error_while_looking_or_an_interrupted_sleep_ends_the_wait():
    def broken():
        raise RuntimeError("lb gone")

    with pytest.raises(RuntimeError, match="lb gone"):
        wait_while(broken, timeout=60, interval=0.01)

    def interrupted(seconds: float) -> None:
        raise Interrupted("stop requested", signal.SIGTERM)

    with pytest.raises(Interrupted):
        wait_while(lambda: ["busy"], timeout=60, interval=1, sleep=interrupted)
