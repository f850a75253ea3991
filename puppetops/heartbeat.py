"""Heartbeats: a sign of life for a step that runs long on a target.

Puppet Server takes ~50 s to start, an r10k deploy or an agent run minutes; without a word
in between an operator (or a CI log watcher) cannot tell waiting from hanging. The executor
watches every step it runs on a target; one that is still running ``interval`` seconds after
it started (and every ``interval`` seconds after that) is reported through ``emit(step,
target, elapsed, waiting_for)`` — so every step gets heartbeats without doing anything, and a
step that knows what it waits for says so (``Step.waits_for``, ``StepContext.waiting_for``).

One daemon thread serves all watches of a ``Heartbeat``; it ends when nothing is watched and
the next watch starts another, so an idle run holds no thread.
"""
from __future__ import annotations

import threading
import time
from contextlib import contextmanager
from typing import Callable, Iterator

DEFAULT_INTERVAL = 10.0

Emit = Callable[[str, str, float, str], None]


class Watch:
    """One step running on one target; ``waiting_for`` may change while it runs."""

    def __init__(self, step: str, target: str, waiting_for: str, interval: float):
        self.step, self.target, self.waiting_for = step, target, waiting_for
        self.started = time.monotonic()
        self.due = self.started + interval


class Heartbeat:
    def __init__(self, emit: Emit, interval: float = DEFAULT_INTERVAL):
        self.emit, self.interval = emit, interval
        self._watches: set[Watch] = set()
        self._lock = threading.Lock()
        self._ticker: threading.Thread | None = None

    @contextmanager
    def watch(self, step: str, target: str, waiting_for: str = "") -> Iterator[Watch]:
        """Beat for ``step`` on ``target`` while the block runs."""
        watch = Watch(step, target, waiting_for, self.interval)
        with self._lock:
            self._watches.add(watch)
            if self._ticker is None:
                self._ticker = threading.Thread(target=self._tick, name="puppetops-heartbeat",
                                                daemon=True)
                self._ticker.start()
        try:
            yield watch
        finally:
            with self._lock:
                self._watches.discard(watch)

    def _tick(self) -> None:
        # A new watch is never due before the ones already watched (same interval), so the
        # ticker can sleep until the earliest due time without being woken up.
        while True:
            with self._lock:
                if not self._watches:
                    self._ticker = None
                    return
                now = time.monotonic()
                due = [w for w in self._watches if w.due <= now]
                for watch in due:
                    watch.due = max(watch.due + self.interval, now)
                pause = min(w.due for w in self._watches) - now
            try:
                for watch in due:
                    self.emit(watch.step, watch.target, now - watch.started, watch.waiting_for)
            except BaseException:
                with self._lock:  # the next watch starts a ticker again
                    self._ticker = None
                raise
            if pause > 0:
                time.sleep(pause)
