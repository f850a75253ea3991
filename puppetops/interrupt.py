"""Stopping a run on request: SIGINT or SIGTERM (the CLI's handlers), or ``Run.interrupt``.

A signal handler only raises a flag. With the flag up the executor starts no new target (they
are skipped, "not run: interrupted"), waits inside steps (``StepContext.sleep``) end at once,
and ``Run.step`` raises ``Interrupted`` — so the run ends at a step boundary, reports what it
did and exits 128 + the signal's number. A plan that must not leave something half done (a
compiler out of the load balancer) undoes it in ``Run.on_interrupt``: the flag is lowered
while the undo runs so its steps can run, and a further signal raises it again, which aborts
the undo.
"""
from __future__ import annotations

import signal
import threading
from contextlib import contextmanager
from typing import Callable, Iterator

from .errors import Interrupted

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Interruption:
    """Which signal asked the run to stop (the first one), and whether work must stop now."""

    def __init__(self) -> None:
        self.signum: int | None = None
        self.last: int | None = None  # the latest signal (a second one stops an undo)
        self.requests = 0  # how many times the run was asked to stop
        self.stop = threading.Event()
        self.news = threading.Event()  # a request not announced yet

    def request(self, signum: int = signal.SIGINT) -> None:
        """Ask the run to stop; safe from a signal handler and from any thread."""
        if self.signum is None:
            self.signum = signum
        self.last = signum
        self.requests += 1
        self.stop.set()
        self.news.set()

    @property
    def name(self) -> str | None:
        """``SIGINT``, ``SIGTERM``... or None while nobody asked the run to stop."""
        return None if self.signum is None else signal.Signals(self.signum).name

    def error(self, what: str = "stopped") -> Interrupted:
        return Interrupted(f"interrupted by {self.name}: {what}", self.signum or signal.SIGINT)

    def check(self) -> None:
        """Raise ``Interrupted`` when the run must stop now."""
        if self.stop.is_set():
            raise self.error()

    def sleep(self, seconds: float) -> None:
        """``time.sleep`` that ends at once with ``Interrupted`` when the run must stop."""
        if self.stop.wait(seconds):
            raise self.error("stopped waiting")

    @contextmanager
    def undoing(self) -> Iterator[None]:
        """Let an undo's steps run although the run was interrupted; a further signal stops
        them, and once the undo is over nothing new starts again."""
        self.stop.clear()
        try:
            yield
        finally:
            self.stop.set()


@contextmanager
def on_signals(interruption: Interruption, announce: Callable[[str], None]) -> Iterator[None]:
    """SIGINT and SIGTERM raise the flag instead of killing the process, for the duration
    (the previous handlers come back after), and each is acknowledged at once through
    ``announce`` — from a thread of its own, since a handler may not take the output's locks.
    Outside the main thread (where Python allows no handler) nothing is installed."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    done = threading.Event()

    def acknowledge() -> None:
        announced = 0
        while interruption.news.wait() and not done.is_set():
            interruption.news.clear()
            while announced < interruption.requests:  # one line per signal
                announced += 1
                announce(_acknowledgement(interruption, again=announced > 1))

    def handler(signum: int, frame: object) -> None:
        interruption.request(signum)

    previous = {s: signal.signal(s, handler) for s in SIGNALS}
    herald = threading.Thread(target=acknowledge, name="puppetops-interrupt", daemon=True)
    herald.start()
    try:
        yield
    finally:
        for s, old in previous.items():
            signal.signal(s, old)
        done.set()
        interruption.news.set()
        herald.join()


def _acknowledgement(interruption: Interruption, again: bool) -> str:
    if again:
        return (f"interrupted again ({signal.Signals(interruption.last or signal.SIGINT).name}): "
                "an undo in progress stops; "
                "what is left out is reported below")
    return (f"interrupted by {interruption.name}: finishing the steps in flight and starting "
            "nothing new (a compiler out of load balancing is put back if healthy; signal "
            "again to stop that too)")
