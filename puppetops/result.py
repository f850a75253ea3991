"""Results: one ``Result`` per target and step, gathered into a ``ResultSet``.

Plans return them and other Python code consumes them, so they are plain data with a stable
JSON form (``to_dict``/``to_json``) and a human table (``table``).
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Iterable, Iterator, Mapping

from tabulate import tabulate

OK, CHANGED, UNCHANGED, FAILED, UNREACHABLE, SKIPPED = (
    "ok", "changed", "unchanged", "failed", "unreachable", "skipped")
STATUSES = (OK, CHANGED, UNCHANGED, FAILED, UNREACHABLE, SKIPPED)
ERROR_STATUSES = frozenset({FAILED, UNREACHABLE})
NOT_RUN = "not run: "  # how a skip because the run stopped before the target begins


@dataclass
class Result:
    """What one step did on one target.

    ``status``: ok (ran, no state semantics), changed, unchanged, failed, unreachable, skipped.
    ``noop`` marks a result computed in noop mode: ``changed`` then means "would change".
    ``value`` carries structured data a step returns (facts, fingerprints...).
    """

    target: str
    step: str
    status: str
    message: str = ""
    exit_code: int | None = None
    stdout: str = ""
    stderr: str = ""
    duration: float = 0.0
    attempts: int = 1
    noop: bool = False
    value: Any = None

    @property
    def ok(self) -> bool:
        return self.status not in ERROR_STATUSES

    @property
    def changed(self) -> bool:
        return self.status == CHANGED

    @property
    def not_run(self) -> bool:
        """Skipped because the run stopped before this target's step (timeout, too many
        failures, interruption), not because the step had nothing to do."""
        return self.status == SKIPPED and self.message.startswith(NOT_RUN)

    def to_dict(self) -> dict[str, Any]:
        return {
            "target": self.target, "step": self.step, "status": self.status,
            "message": self.message, "exit_code": self.exit_code, "stdout": self.stdout,
            "stderr": self.stderr, "duration": round(self.duration, 3), "attempts": self.attempts,
            "noop": self.noop, "value": self.value,
        }


@dataclass
class ResultSet:
    """The results of one step (or a whole plan) across targets, in target order."""

    results: list[Result] = field(default_factory=list)
    name: str = ""

    def __iter__(self) -> Iterator[Result]:
        return iter(self.results)

    def __len__(self) -> int:
        return len(self.results)

    def __getitem__(self, index: int) -> Result:
        return self.results[index]

    def add(self, result: Result) -> None:
        self.results.append(result)

    def extend(self, results: Iterable[Result]) -> None:
        self.results.extend(results)

    @property
    def ok(self) -> bool:
        return all(r.ok for r in self.results)

    @property
    def ok_set(self) -> "ResultSet":
        return ResultSet([r for r in self.results if r.ok], self.name)

    @property
    def error_set(self) -> "ResultSet":
        return ResultSet([r for r in self.results if not r.ok], self.name)

    @property
    def changed(self) -> bool:
        return any(r.changed for r in self.results)

    @property
    def names(self) -> list[str]:
        return [r.target for r in self.results]

    def find(self, target: str) -> Result | None:
        """The last result for ``target`` (the latest step when a set spans several steps)."""
        for r in reversed(self.results):
            if r.target == target:
                return r
        return None

    def by_status(self) -> dict[str, int]:
        counts = {s: 0 for s in STATUSES}
        for r in self.results:
            counts[r.status] += 1
        return counts

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "ok": self.ok, "counts": self.by_status(),
                "results": [r.to_dict() for r in self.results]}

    def to_json(self, **kwargs: Any) -> str:
        return json.dumps(self.to_dict(), **kwargs)

    def table(self, tablefmt: str = "simple") -> str:
        rows = [(r.target, r.step, r.status + (" (noop)" if r.noop else ""), f"{r.duration:.1f}s",
                 r.attempts, _first_line(r.message or r.stderr or r.stdout))
                for r in self.results]
        return tabulate(rows, headers=("target", "step", "status", "time", "tries", "message"),
                        tablefmt=tablefmt)

    def details(self) -> str:
        """The table, then every failure's whole message (a log tail, say), for a report or
        a test assertion that must show why."""
        failures = [f"{r.target} — {r.step}:\n{r.message or r.stderr or r.stdout}"
                    for r in self.results if not r.ok]
        return "\n\n".join([self.table(), *failures])


def _first_line(text: str, width: int = 80) -> str:
    line = text.strip().splitlines()[0] if text.strip() else ""
    return line if len(line) <= width else line[: width - 1] + "…"


@dataclass(frozen=True)
class Notes:
    """What a plan adds to its summary about some targets (``@plan`` builds the summary, the
    plan only says what it knows beyond its steps): ``messages[target]`` goes before that
    target's summary message, ``values[target]`` becomes its value."""

    messages: Mapping[str, str] = field(default_factory=dict)
    values: Mapping[str, Any] = field(default_factory=dict)


def summary(name: str, sets: Iterable[ResultSet], notes: Notes | None = None) -> ResultSet:
    """One result per target over ``sets``, in the order targets first appear: failed (with
    the first failure), changed (with what changed) or unchanged; then ``notes``."""
    per_target: dict[str, list[Result]] = {}
    for rs in sets:
        for r in rs:
            per_target.setdefault(r.target, []).append(r)
    out = ResultSet(name=name)
    for target, results in per_target.items():
        failed = next((r for r in results if r.status in ERROR_STATUSES), None)
        done = [r for r in results if r.status == CHANGED]
        noop = any(r.noop for r in results)
        if failed:
            out.add(Result(target, name, failed.status, f"{failed.step}: {failed.message}",
                           noop=noop))
        elif done:
            out.add(Result(target, name, CHANGED, "; ".join(f"{r.step}: {r.message}" for r in done),
                           noop=noop))
        else:
            out.add(Result(target, name, UNCHANGED, noop=noop))
    for result in out:
        _note(result, notes or Notes())
    return out


def _note(result: Result, notes: Notes) -> None:
    note = notes.messages.get(result.target)
    if note:
        result.message = f"{note} — {result.message}" if result.message else note
    if result.target in notes.values:
        result.value = notes.values[result.target]
