"""The core commands: inventory, plans, plan, command, upload, facts. (Every plan also gets
a command of its own: ``plan_tasks``.)"""
from __future__ import annotations

import json
import sys
from typing import Any, Optional

from invoke import task
from tabulate import tabulate

from ..errors import PuppetopsError, UsageError
from ..inventory.schema import TRANSPORTS
from ..bounds import file_mode
from ..params import FileMode, TargetSpec
from ..plan_registry import discover, get_plan
from . import query as puppetdb_query
from .options import TARGETS, RunOptions, option_help
from .parsing import PuppetopsTask, typed_task
from .plan_tasks import plan_command
from .runner import execute, fail, load_inventory, run_plan
from .targeting import Targeting


def _select(inv, targets, pql):
    """``--targets`` and/or ``--query`` (intersected), else every target."""
    try:
        if pql is not None:
            targets = puppetdb_query.resolve(inv, pql, targets, "--targets")
        return inv.select(None) if targets is None else inv.select_some(targets, "--targets")
    except PuppetopsError as exc:
        raise fail(exc) from None


@task(klass=PuppetopsTask, help={
    "inventory": option_help("inventory"), "targets": TARGETS.help, "query": option_help("query"),
    "strict": option_help("strict"), "format": "json (exact target data) or table (default)"})
def inventory(c, inventory=None, targets=None, query=None, format="table", strict=False):
    """Show the targets an inventory resolves to, with their merged config, vars and facts."""
    if format not in ("json", "table"):
        raise fail(UsageError(f"--format: expected json or table, got {format!r}"))
    inv = load_inventory(inventory, strict)
    selected = _select(inv, targets, query)
    if format == "json":
        print(json.dumps(_as_json(inv.to_dict(selected)), indent=2, sort_keys=True))
        return
    rows = [(t.name, ",".join(t.aliases), t.transport, t.user or "", t.host or "", t.port or "",
             ",".join(sorted(g for g in t.groups if g != "all"))) for t in selected]
    print(tabulate(rows, headers=("target", "aliases", "transport", "user", "host", "port",
                                  "groups")))
    elsewhere = sorted({t.transport for t in selected} - set(TRANSPORTS))
    if elsewhere:
        print(f"note: puppetops runs only {' and '.join(TRANSPORTS)}; a run that selects targets "
              f"of transport {', '.join(elsewhere)} is refused", file=sys.stderr)


def _as_json(value: Any) -> Any:
    """Inventory data as JSON can hold it. YAML also allows keys that are not strings (``1:``,
    ``2001-01-01:``, mixed with string keys they cannot even be sorted), dates, binary and sets:
    those are shown as their text instead of ending the listing with a traceback."""
    if isinstance(value, dict):
        return {key if isinstance(key, str) else json.dumps(key, default=str).strip('"'):
                _as_json(item) for key, item in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_as_json(item) for item in value]
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return str(value)


@task(klass=PuppetopsTask)
def plans(c):
    """List the plans: installed ones and those in ./plans."""
    rows = [(info.name, info.summary) for info in sorted(discover().values(), key=lambda i: i.name)]
    print(tabulate(rows, headers=("plan", "description")))


@typed_task(positional=("name",), words="param")
def plan(c, name: str, param: list = (), targets: Optional[TargetSpec] = None, *,
         options: RunOptions):
    """Run any plan: plan NAME --param key=value ...  (`invoke plans` lists them).

    Under the puppetops script the parameters can be bare words: plan NAME key=value ...

    Every plan is also a command of its own, with its parameters as options.

    Args:
        name: the plan's name
        param: a plan parameter as key=value (repeatable); bare key=value words after the
            plan's name are the same
    """
    try:
        info = get_plan(name)
        raw = _plan_parameters(param or [])
        if targets is not None:
            if "targets" in raw:
                raise UsageError(f"targets given twice (-t {targets} and "
                                 f"targets={raw['targets']}): give one")
            raw["targets"] = targets
        if options.rerun is not None and "targets" not in info.parameters:
            raise UsageError(f"--rerun: plan {name} takes no targets parameter")
        kwargs = info.coerce(raw, picked=("targets",) if options.rerun is not None else ())
    except UsageError as exc:
        raise fail(exc) from None
    run_plan(info, {k: v for k, v in kwargs.items() if k != "targets"}, options,
             targets=kwargs.get("targets"), label="targets")


def _plan_parameters(pairs: list[str]) -> dict[str, str]:
    """``key=value`` words → {key: value}; a key given twice is a mistake, not the last one."""
    raw: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise UsageError(f"plan parameter {pair!r}: expected key=value")
        if key in raw:
            raise UsageError(f"plan parameter {key} given twice ({key}={raw[key]} and "
                             f"{pair}): give it once")
        raw[key] = value
    return raw


@typed_task(positional=("command",))
def command(c, command: str, targets: Optional[TargetSpec] = None, run_as: Optional[str] = None,
            *, options: RunOptions):
    """Run a shell command on targets (like `bolt command run`).

    Args:
        command: the shell command to run
        run_as: run as this user through sudo
    """
    from ..steps import RunCommand
    if not command.strip():
        raise fail(UsageError("command: expected a shell command to run, got an empty one"))
    execute(lambda run, chosen: run.step(RunCommand(command, run_as=run_as), chosen,
                                         catch_errors=True),
            options, targeting=Targeting(given=targets, confined=True))


@typed_task(positional=("source", "destination"))
def upload(c, source: str, destination: str, targets: Optional[TargetSpec] = None,
           mode: Optional[FileMode] = None, *, options: RunOptions):
    """Upload a file to targets (like `bolt file upload`); unchanged where it already matches.

    Args:
        source: local file
        destination: remote path
        mode: file mode in octal, e.g. 0644
    """
    from ..steps import Upload
    try:
        step = Upload(source, destination, mode=file_mode(mode) if mode else None)
    except OSError as exc:
        raise fail(UsageError(f"upload: {exc}")) from None
    execute(lambda run, chosen: run.step(step, chosen, catch_errors=True),
            options, targeting=Targeting(given=targets, confined=True))


@plan_command("facts", confined=True)
def facts(run, found, options):
    """Gather facts (OS, Puppet packages, layout, init system, services) from targets."""
    if options.format == "human":
        print(tabulate([_facts_row(r.target, r.value or {}) for r in found],
                       headers=("target", "os", "layout", "init", "puppet packages", "running")))


def _facts_row(target: str, gathered: dict) -> tuple:
    packages = gathered.get("packages") or {}
    running = gathered.get("services") or {}
    return (target, gathered.get("os_name", ""), gathered.get("puppet_layout"),
            gathered.get("init", ""),
            " ".join(f"{k}={v}" for k, v in sorted(packages.items()) if k.startswith("puppet")),
            " ".join(k for k, v in running.items() if v))
