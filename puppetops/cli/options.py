"""One declarative table of the run options: it feeds the CLI help, validation and the docs."""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from ..errors import UsageError
from ..executor import DEFAULT_CONCURRENCY
from ..output import FORMATS


@dataclass(frozen=True)
class Option:
    help: str
    default: Any = None


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
}


def help_for(*names: str, **extra: str) -> dict[str, str]:
    """Invoke ``help=`` mapping for the given run options plus task-specific ones."""
    return {**{n: OPTIONS[n].help for n in names}, **extra}


def inventory_path(given: str | None) -> str:
    return given or os.environ.get("PUPPETOPS_INVENTORY") or "inventory.yaml"


def validate(*, format: str = "human", concurrency: Any = DEFAULT_CONCURRENCY,
             attempts: Any = None, timeout: Any = None) -> dict[str, Any]:
    """Check run options once, whatever command they came from; return them typed."""
    if format not in FORMATS:
        raise UsageError(f"--format: expected one of {', '.join(FORMATS)}, got {format!r}")
    values = {"concurrency": concurrency, "attempts": attempts, "timeout": timeout}
    typed: dict[str, Any] = {"format": format}
    for key, value in values.items():
        if value is None:
            typed[key] = None
            continue
        try:
            number = float(value) if key == "timeout" else int(value)
        except (TypeError, ValueError):
            raise UsageError(f"--{key}: expected a number, got {value!r}") from None
        if number <= 0:
            raise UsageError(f"--{key}: must be greater than 0, got {value!r}")
        typed[key] = number
    return typed


def options_markdown() -> str:
    """The options table for the README (kept in sync by a test)."""
    rows = [f"| `--{n.replace('_', '-')}` | {o.help} |" for n, o in OPTIONS.items()]
    return "\n".join(["| option | meaning |", "|---|---|", *rows])
