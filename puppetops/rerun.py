"""The rerun file: each target's outcome in the last run, so the next can pick the failed ones.

Like Bolt's ``.rerun.json`` (``--rerun failure|success|all``), it lives in the project folder —
here the inventory's folder, ``.puppetops/rerun.json``, so a cron job and an operator in
another working directory share it — and every run with a rerun file rewrites it at its end,
a failed or interrupted run included. It is replaced atomically (a reader never sees half a
file) and records the inventory it belongs to, so a rerun never picks names from another one.

The file records the run's own targets (``--targets``, ``--rerun``'s or the command's
default), not the infrastructure a plan also touched (main, the load balancers): a rerun picks
what the run was *for*. A target's outcome is ``failure`` when any of its steps failed or was
unreachable, when the run stopped before it (a ``not run: ...`` skip, or no step reached it),
or when the run was stopped (a plan's failure, the failure limit, an interruption) — puppetops
cannot tell which of a plan's targets were done then, and its steps are idempotent, so a rerun
of them is safe. Only a run that is a single step on exactly its targets (``command``,
``upload``, ``facts``) knows: its outcomes stay exact even when it was stopped.
``success`` otherwise. A run that ran no step (refused by a lock, stopped before it began)
and a noop run (it changed nothing: ``--rerun failure`` after it must still pick what the last
real run left failed) leave the last run's file as it was.
"""
from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass
from typing import Iterable, Sequence

from .errors import UsageError
from .result import ResultSet

RERUN = ("failure", "success", "all")
SUCCESS, FAILURE = "success", "failure"
_VERSION = 1


def rerun_path(inventory_path: str) -> str:
    """Where the runs of this inventory keep their outcomes."""
    folder = os.path.dirname(os.path.abspath(inventory_path))
    return os.path.join(folder, ".puppetops", "rerun.json")


def outcomes(steps: Iterable[ResultSet]) -> dict[str, str]:
    """Each target's outcome over a run's steps, in the order targets first appear."""
    status: dict[str, str] = {}
    for results in steps:
        for result in results:
            if not result.ok or result.not_run:
                status[result.target] = FAILURE
            else:
                status.setdefault(result.target, SUCCESS)
    return status


@dataclass
class Record:
    """Where a run records its outcomes, and for which targets.

    ``targets``: the run's own targets (None: every target it touched). ``exact``: the run is
    one step on exactly those targets, so its outcomes hold even when it was stopped.
    """

    path: str
    inventory_path: str
    targets: Sequence[str] | None = None
    exact: bool = False

    def outcomes(self, steps: Sequence[ResultSet], stopped: bool) -> dict[str, str]:
        seen = outcomes(steps)
        if self.targets is None:
            return seen
        if stopped and not self.exact:
            return {name: FAILURE for name in self.targets}
        return {name: seen.get(name, FAILURE) for name in self.targets}

    def save(self, steps: Sequence[ResultSet], stopped: bool) -> None:
        """Write the outcomes (see the module's docstring); ``OSError`` if it cannot."""
        write(self.path, self.inventory_path, self.outcomes(steps, stopped))


def write(path: str, inventory_path: str, status: dict[str, str]) -> None:
    """Write outcomes atomically (temporary file, fsync, rename); ``OSError`` if it can't."""
    document = {"version": _VERSION, "inventory": os.path.abspath(inventory_path),
                "targets": [{"target": name, "status": outcome}
                            for name, outcome in status.items()]}
    folder = os.path.dirname(path)
    os.makedirs(folder, exist_ok=True)
    fd, temporary = tempfile.mkstemp(prefix=".rerun-", suffix=".json", dir=folder)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(document, handle, indent=1)
            handle.write("\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        os.unlink(temporary)
        raise


def load(path: str, which: str, inventory_path: str) -> list[str]:
    """The names of the last run's targets whose outcome was ``which`` (failure, success, all).

    Every problem is a ``UsageError`` naming the file and what to do: nothing is run.
    """
    if which not in RERUN:
        raise UsageError(f"--rerun: expected one of {', '.join(RERUN)}, got {which!r}")
    try:
        with open(path, encoding="utf-8") as handle:
            document = json.load(handle)
    except FileNotFoundError:
        raise UsageError(f"--rerun {which}: no previous run recorded ({path} does not exist); "
                         "run once with --targets first") from None
    except (OSError, ValueError) as exc:
        raise UsageError(f"--rerun {which}: cannot read {path} ({exc}); run once with "
                         "--targets to write it again") from None
    entries = document.get("targets") if isinstance(document, dict) else None
    if not isinstance(entries, list) or not all(
            isinstance(e, dict) and isinstance(e.get("target"), str) and e.get("status") in
            (SUCCESS, FAILURE) for e in entries):
        raise UsageError(f"--rerun {which}: {path} is not a puppetops rerun file; run once "
                         "with --targets to write it again")
    recorded = document.get("inventory")
    if recorded != os.path.abspath(inventory_path):
        raise UsageError(f"--rerun {which}: {path} records a run of inventory {recorded}, not "
                         f"{os.path.abspath(inventory_path)}; run once with --targets first")
    return [e["target"] for e in entries if which == "all" or e["status"] == which]
