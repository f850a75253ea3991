"""Human output: a line per finished target on stderr, then summary tables on stdout."""
from __future__ import annotations

import sys
import threading
from typing import Any, Sequence

from tabulate import tabulate

from ..result import Result, ResultSet
from ..target import Target
from .base import Outputter
from .status import table as status_table


class HumanOutput(Outputter):
    def __init__(self, *, stderr: Any = None, stdout: Any = None, quiet: bool = False,
                 summary: bool = True):
        self.err, self.out = stderr or sys.stderr, stdout or sys.stdout
        self.quiet, self.summary = quiet, summary
        self.steps: list[ResultSet] = []
        self.reported = False  # a status table was shown: it replaces the step table
        self._lock = threading.Lock()

    def _line(self, text: str) -> None:
        if not self.quiet:
            with self._lock:
                print(text, file=self.err, flush=True)

    def plan_start(self, name, params):
        shown = " ".join(f"{k}={v}" for k, v in params.items() if v not in (None, ""))
        self._line(f"== plan {name} {shown}".rstrip())

    def plan_end(self, name, ok, duration, message):
        self._line(f"== plan {name} {'ok' if ok else 'FAILED'} in {duration:.1f}s"
                   + (f": {message}" if message and not ok else ""))

    def step_start(self, step: str, targets: Sequence[Target]) -> None:
        self._line(f"-- {step} on {len(targets)} target(s)")

    def target_done(self, result: Result, done: int, total: int, failed: int) -> None:
        detail = result.message or (result.stdout.strip().splitlines() or [""])[-1]
        noop = " (noop)" if result.noop and result.status == "changed" else ""
        self._line(f"[{done}/{total}, {failed} failed] {result.target}: {result.status}{noop}"
                   + (f" — {detail}" if detail else ""))

    def step_end(self, results: ResultSet) -> None:
        self.steps.append(results)

    def heartbeat(self, step: str, target: str, elapsed: float, waiting_for: str) -> None:
        self._line(f"... {target}: {step} still running after {elapsed:.0f}s"
                   + (f" — waiting for {waiting_for}" if waiting_for else ""))

    def message(self, text: str) -> None:
        self._line(text)

    def status(self, document: dict[str, Any]) -> None:
        if self.summary:
            print(status_table(document) + "\n", file=self.out, flush=True)
            self.reported = True

    def run_end(self, summary: dict[str, Any]) -> None:
        if not self.summary or self.reported:  # a status table says it all, unreachable
            return  # hosts included
        if summary.get("skipped"):  # on stdout too: a cron job's redirect must say why
            print(f"skipped ({summary['skipped']}): {summary.get('error', '')}", file=self.out,
                  flush=True)
            return
        rows = []
        for rs in self.steps:
            counts = rs.by_status()
            rows.append((rs.name, len(rs), counts["ok"] + counts["unchanged"], counts["changed"],
                         counts["failed"], counts["unreachable"], counts["skipped"]))
        if rows:
            print(tabulate(rows, headers=("step", "targets", "ok", "changed", "failed",
                                          "unreachable", "skipped")), file=self.out)
        failures = [r for rs in self.steps for r in rs.error_set]
        if failures:
            print("\nFailures:", file=self.out)
            print(ResultSet(failures).table(), file=self.out)
        print("\n" + run_verdict(summary), file=self.out, flush=True)


def run_verdict(summary: dict[str, Any]) -> str:
    """The run's last line: ok, FAILED or INTERRUPTED, how many targets failed out of how many, whether
    some were never run, and whether it was a noop (so nothing was changed)."""
    total, failed = summary.get("targets", 0), len(summary.get("failed_targets", ()))
    not_run = len(summary.get("not_run_targets", ()))
    counts = f"{failed} of {total} target(s) failed" if failed else f"{total} target(s)"
    if not total and summary.get("error"):  # stopped before its first step (error on stderr)
        counts = f"stopped before any step: {summary['error']}"
    if not_run:
        counts += f", {not_run} not run"
    noop = " (noop: nothing was changed)" if summary.get("noop") else ""
    word = ("INTERRUPTED by " + summary["interrupted"] if summary.get("interrupted")
            else "ok" if summary.get("ok") else "FAILED")
    return f"{word}{noop}: {counts}, {summary.get('duration', 0):.1f}s"
