"""One declarative table of the run options: it feeds the CLI help, validation and the docs."""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from ..errors import UsageError
from ..executor import DEFAULT_CONCURRENCY
from ..output import FORMATS
from ..rerun import RERUN


@dataclass(frozen=True)
class Option:
    """``short``: whether Invoke may give it a one-letter flag. The older options keep theirs;
    new ones get none, so adding an option never moves another option's letter."""

    help: str
    default: Any = None
    short: bool = True


OPTIONS: dict[str, Option] = {
    "inventory": Option("inventory file (default: $PUPPETOPS_INVENTORY or ./inventory.yaml)"),
    "targets": Option("targets: comma list of names, aliases, groups, globs (compiler*) or all"),
    "format": Option(f"output format: {' or '.join(FORMATS)} (json: one document on stdout)", "human"),
    "concurrency": Option("how many targets to work on at once", DEFAULT_CONCURRENCY),
    "attempts": Option("attempts per target for transient connection faults "
                       "(default: inventory config `attempts`, else 3)"),
    "noop": Option("report what would change without changing anything", False),
    "log_file": Option("append JSON lines (every step, target, status, timing) to this file"),
    "strict": Option("treat inventory warnings (unknown keys) as errors", False),
    "timeout": Option("overall time limit for the run, in seconds"),
    "rerun": Option(f"instead of --targets: the {', '.join(RERUN[:-1])} or {RERUN[-1]} "
                    "targets of the last run (outcomes kept in .puppetops/rerun.json next to "
                    "the inventory)", short=False),
    "max_fail_percentage": Option("stop once more than this percentage of the run's targets "
                                  "failed (counted over the whole run): no target starts a "
                                  "further step", short=False),
}

LONG_ONLY = frozenset(name for name, option in OPTIONS.items() if not option.short)


def help_for(*names: str, **extra: str) -> dict[str, str]:
    """Invoke ``help=`` mapping for the given run options plus task-specific ones."""
    return {**{n: OPTIONS[n].help for n in names}, **extra}


def inventory_path(given: str | None) -> str:
    return given or os.environ.get("PUPPETOPS_INVENTORY") or "inventory.yaml"


def validate(*, format: str = "human", concurrency: Any = DEFAULT_CONCURRENCY,
             attempts: Any = None, timeout: Any = None, log_file: str | None = None,
             rerun: str | None = None, max_fail_percentage: Any = None) -> dict[str, Any]:
    """Check run options once, whatever command they came from; return them typed.

    Everything here fails before the run starts (exit 2, nothing contacted): a log file that
    cannot be opened is found now, not after the first step (cron lines log to /var/log).
    """
    if format not in FORMATS:
        raise UsageError(f"--format: expected one of {', '.join(FORMATS)}, got {format!r}")
    if rerun is not None and rerun not in RERUN:
        raise UsageError(f"--rerun: expected one of {', '.join(RERUN)}, got {rerun!r}")
    if log_file is not None:
        check_log_file(log_file)
    values = {"concurrency": concurrency, "attempts": attempts, "timeout": timeout,
              "max_fail_percentage": max_fail_percentage}
    typed: dict[str, Any] = {"format": format, "rerun": rerun}
    for key, value in values.items():
        typed[key] = None if value is None else _number(key, value)
    return typed


def _number(key: str, value: Any) -> float | int:
    flag = "--" + key.replace("_", "-")
    try:
        number = int(value) if key in ("concurrency", "attempts") else float(value)
    except (TypeError, ValueError):
        raise UsageError(f"{flag}: expected a number, got {value!r}") from None
    if key == "max_fail_percentage":
        if not 0 <= number <= 100:
            raise UsageError(f"{flag}: expected a percentage from 0 to 100, got {value!r}")
    elif number <= 0:
        raise UsageError(f"{flag}: must be greater than 0, got {value!r}")
    return number


def check_log_file(path: str) -> None:
    """Open ``path`` for appending as the run will, or say what to do about it."""
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        problem = "is not a directory" if os.path.exists(directory) else "does not exist; create it"
        raise UsageError(f"--log-file {path}: {directory} {problem} or choose another file")
    try:
        with open(path, "a", encoding="utf-8"):
            pass
    except OSError as exc:
        raise UsageError(f"--log-file {path}: cannot append to it ({exc.strerror or exc}); "
                         "make it writable for this user or choose another file") from None


def options_markdown() -> str:
    """The options table for the README (kept in sync by a test)."""
    rows = [f"| `--{n.replace('_', '-')}` | {o.help} |" for n, o in OPTIONS.items()]
    return "\n".join(["| option | meaning |", "|---|---|", *rows])
