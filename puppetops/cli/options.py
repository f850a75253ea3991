"""The run options, declared once (as pyinfra's ``api/arguments.py`` and Bolt's option table
do): ``RunOptions`` names each with its type, default and help. Every command that runs
something takes them all, typed and checked by the same reader as plan parameters
(``puppetops.params``); the README's option table is rendered from here.

Short flags are a contract, not an accident of Invoke's "first free letter": ``SHORT_FLAGS``
is the whole set, each letter means the same in every command, and no other option gets one.
"""
from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from typing import Any, Literal, Optional

from ..errors import UsageError
from ..executor import DEFAULT_CONCURRENCY
from ..output import FORMATS
from ..params import COMMON_HELP, Count, Param, Percentage, Seconds, TargetSpec, param
from ..rerun import RERUN

SHORT_FLAGS = {"targets": "t", "inventory": "i", "noop": "n", "format": "f"}
"""The only one-letter flags, the same in every command (``-h`` is Invoke's help)."""


def _option(default: Any, help: str) -> Any:
    return field(default=default, metadata={"help": help})


@dataclass(frozen=True)
class RunOptions:
    """How a command runs, whatever it runs."""

    inventory: Optional[str] = _option(
        None, "inventory file (default: $PUPPETOPS_INVENTORY or ./inventory.yaml)")
    format: Literal[FORMATS] = _option(  # type: ignore[valid-type]
        "human", f"output format: {' or '.join(FORMATS)} (json: one document on stdout)")
    concurrency: Count = _option(DEFAULT_CONCURRENCY, "how many targets to work on at once")
    attempts: Optional[Count] = _option(
        None, "attempts per target for transient connection faults (default: inventory config "
              "`attempts`, else 3)")
    noop: bool = _option(False, "report what would change without changing anything")
    log_file: Optional[str] = _option(
        None, "append JSON lines (every step, target, status, timing) to this file")
    strict: bool = _option(False, "treat inventory warnings (unknown keys, misspelt vars) as "
                                  "errors")
    timeout: Optional[Seconds] = _option(None, "overall time limit for the run, in seconds")
    rerun: Optional[Literal[RERUN]] = _option(  # type: ignore[valid-type]
        None, f"instead of --targets: the {', '.join(RERUN[:-1])} or {RERUN[-1]} targets of the "
              "last run (outcomes kept in .puppetops/rerun.json next to the inventory)")
    query: Optional[str] = _option(
        None, "targets from PuppetDB: a PQL query whose results have a certname (with "
              "--targets: the targets both select)")
    wait_lock: Optional[Seconds] = _option(
        None, "when another run holds a lock this run needs, wait up to this many seconds for "
              "it (default: exit 75 at once)")
    max_fail_percentage: Optional[Percentage] = _option(
        None, "stop once more than this percentage of the run's targets failed (counted over "
              "the whole run): no target starts a further step")


def run_params(formats: tuple[str, ...] = FORMATS) -> list[Param]:
    """The run options as typed parameters, in declaration order; ``formats``: the output
    formats of this command (``status`` also draws a Mermaid diagram)."""
    import typing
    hints = typing.get_type_hints(RunOptions, include_extras=True)
    made = [param(f.name, hints[f.name], f.default, f.metadata["help"])
            for f in dataclasses.fields(RunOptions)]
    if formats == FORMATS:
        return made
    return [dataclasses.replace(p, choices=formats, help=p.help.replace(
        " or ".join(FORMATS), ", ".join(formats[:-1]) + " or " + formats[-1]))
            if p.name == "format" else p for p in made]


RUN_OPTION_NAMES = tuple(f.name for f in dataclasses.fields(RunOptions))

TARGETS = param("targets", Optional[TargetSpec], None, COMMON_HELP["targets"])


def option_help(name: str) -> str:
    """The help of run option ``name``, for commands that take only some of them."""
    return RunOptions.__dataclass_fields__[name].metadata["help"]


def flag(name: str) -> str:
    """``--log-file`` for ``log_file``."""
    return "--" + name.replace("_", "-")


def inventory_path(given: str | None) -> str:
    return given or os.environ.get("PUPPETOPS_INVENTORY") or "inventory.yaml"


def check_log_file(path: str) -> None:
    """Open ``path`` for appending as the run will, or say what to do about it: a log file
    that cannot be opened is found before the run starts, not after its first step (cron
    lines log to /var/log)."""
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
    rows = []
    for p in [TARGETS, *run_params()]:
        names = ", ".join(([f"`-{SHORT_FLAGS[p.name]}`"] if p.name in SHORT_FLAGS else [])
                          + [f"`{flag(p.name)}`"])
        value = "" if p.kind in (bool, str) and not p.choices else p.expected
        default = "" if p.default in (None, False) else f"`{p.default}`"
        rows.append(f"| {names} | {value} | {default} | {p.help} |")
    return "\n".join(["| option | value | default | meaning |", "|---|---|---|---|", *rows])
