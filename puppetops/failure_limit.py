"""The run-wide failure limit (``--max-fail-percentage``): how many targets may fail in a run.

Ansible counts ``max_fail_percentage`` per ``serial`` batch, and users are surprised when
one bad host per batch never stops a rolling update; pyinfra's ``--fail-percent`` has the
same shape. Here failures are counted over the whole run, per distinct target: a target
that failed any step counts once, out of every target the run has given a step so far (each
plan's first step covers all its targets, e.g. ``facts``). Once more than the percentage
failed, no target starts another step and the step that saw it raises ``PlanFailure``.
"""
from __future__ import annotations

import math
import threading
from typing import Iterable

from . import bounds
from .errors import PlanFailure
from .result import NOT_RUN, SKIPPED, Result, ResultSet


class FailureLimit:
    def __init__(self, percentage: float):
        self.percentage = bounds.PERCENTAGE.check(percentage, "max_fail_percentage")
        self._targets: set[str] = set()
        self._failed: list[str] = []
        self._lock = threading.Lock()

    def include(self, targets: Iterable[str]) -> None:
        """Targets a step is about to work on (they count towards the whole)."""
        with self._lock:
            self._targets.update(targets)

    def record(self, result: Result) -> None:
        with self._lock:
            if not result.ok and result.target not in self._failed:
                self._failed.append(result.target)

    @property
    def exceeded(self) -> bool:
        with self._lock:
            return len(self._failed) > math.floor(len(self._targets) * self.percentage / 100)

    @property
    def reason(self) -> str:
        return f"more than {self.percentage:g}% of targets failed in this run"

    def skip(self, target: str, step: str) -> Result:
        """The result of a step that does not start because the limit was passed."""
        return Result(target, step, SKIPPED, f"{NOT_RUN}{self.reason}")

    def failure(self, results: ResultSet) -> PlanFailure:
        with self._lock:
            failed, total = list(self._failed), len(self._targets)
        return PlanFailure(f"stopped: {self.reason} ({len(failed)} of {total}: "
                           f"{', '.join(failed)})", results)
