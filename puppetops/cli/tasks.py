"""The core commands: inventory, plans, plan, command, upload, facts."""
from __future__ import annotations

import json
import sys
from typing import Any

from invoke import task
from tabulate import tabulate

from ..errors import PuppetopsError, UsageError
from ..inventory.schema import TRANSPORTS
from ..plan import discover, get_plan
from .options import help_for
from .parsing import KeyValueTask, RunTask
from .runner import execute, fail, load_inventory
from .targeting import Targeting

RUN_OPTIONS = ("inventory", "format", "concurrency", "attempts", "noop", "log_file", "strict",
               "timeout", "rerun", "max_fail_percentage")


def _select(inv, targets):
    try:
        return inv.select(None) if targets is None else inv.select_some(targets, "--targets")
    except PuppetopsError as exc:
        raise fail(exc) from None


@task(help=help_for("inventory", "targets", "strict",
                    format="json (exact target data) or table (default)"))
def inventory(c, inventory=None, targets=None, format="table", strict=False):
    """Show the targets an inventory resolves to, with their merged config, vars and facts."""
    if format not in ("json", "table"):
        raise fail(UsageError(f"--format: expected json or table, got {format!r}"))
    inv = load_inventory(inventory, strict)
    selected = _select(inv, targets)
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


@task
def plans(c):
    """List the plans: installed ones and those in ./plans."""
    rows = [(info.name, info.summary) for info in sorted(discover().values(), key=lambda i: i.name)]
    print(tabulate(rows, headers=("plan", "description")))


@task(help=help_for(*RUN_OPTIONS, "targets",
                    params="plan parameters as key=value ... (after the plan name)"),
      klass=KeyValueTask, positional=["name", "params"], iterable=["params"])
def plan(c, name, params=None, targets=None, inventory=None, format="human", concurrency=100,
         attempts=None, noop=False, log_file=None, strict=False, timeout=None, rerun=None,
         max_fail_percentage=None):
    """Run any plan: invoke plan NAME key=value ...  (`invoke plans` lists them)."""
    try:
        info = get_plan(name)
        raw = dict(_split(p) for p in params or [])
        if targets is not None:
            raw.setdefault("targets", targets)
        takes = info.parameters.get("targets")
        if rerun is not None and takes is None:
            raise UsageError(f"--rerun: plan {name} takes no targets parameter")
        kwargs = info.coerce(raw, picked=("targets",) if rerun is not None else ())
    except UsageError as exc:
        raise fail(exc) from None
    targeting = None if takes is None else Targeting(
        given=raw.get("targets"), label="targets",
        default=None if takes.default is takes.empty else takes.default)

    def run_plan(run, chosen):
        return info.fn(run, **{**kwargs, **({"targets": chosen} if chosen is not None else {})})

    execute(run_plan, targeting=targeting, inventory=inventory, format=format,
            concurrency=concurrency, attempts=attempts, noop=noop, log_file=log_file,
            strict=strict, timeout=timeout, rerun=rerun, max_fail_percentage=max_fail_percentage)


def _split(pair: str) -> tuple[str, str]:
    key, sep, value = pair.partition("=")
    if not sep or not key:
        raise UsageError(f"plan parameter {pair!r}: expected key=value")
    return key, value


@task(klass=RunTask, help=help_for(*RUN_OPTIONS, "targets", command="the shell command to run",
                                   run_as="run as this user through sudo"))
def command(c, command, targets=None, inventory=None, format="human", concurrency=100,
            attempts=None, noop=False, log_file=None, strict=False, timeout=None, run_as=None,
            rerun=None, max_fail_percentage=None):
    """Run a shell command on targets (like `bolt command run`)."""
    from ..steps import RunCommand
    execute(lambda run, chosen: run.step(RunCommand(command, run_as=run_as), chosen,
                                         catch_errors=True),
            targeting=Targeting(given=targets, confined=True), inventory=inventory, format=format,
            concurrency=concurrency, attempts=attempts, noop=noop, log_file=log_file,
            strict=strict, timeout=timeout, rerun=rerun, max_fail_percentage=max_fail_percentage)


@task(klass=RunTask, help=help_for(*RUN_OPTIONS, "targets", source="local file",
                                   destination="remote path", mode="file mode in octal, e.g. 0644"))
def upload(c, source, destination, targets=None, mode=None, inventory=None, format="human",
           concurrency=100, attempts=None, noop=False, log_file=None, strict=False, timeout=None,
           rerun=None, max_fail_percentage=None):
    """Upload a file to targets (like `bolt file upload`); unchanged where it already matches."""
    from ..steps import Upload
    try:
        step = Upload(source, destination, mode=int(mode, 8) if mode else None)
    except (OSError, ValueError) as exc:
        raise fail(UsageError(f"upload: {exc}")) from None
    execute(lambda run, chosen: run.step(step, chosen, catch_errors=True),
            targeting=Targeting(given=targets, confined=True), inventory=inventory, format=format,
            concurrency=concurrency, attempts=attempts, noop=noop, log_file=log_file,
            strict=strict, timeout=timeout, rerun=rerun, max_fail_percentage=max_fail_percentage)


@task(klass=RunTask, help=help_for(*RUN_OPTIONS, "targets"))
def facts(c, targets=None, inventory=None, format="human", concurrency=100, attempts=None,
          noop=False, log_file=None, strict=False, timeout=None, rerun=None,
          max_fail_percentage=None):
    """Gather facts (OS, Puppet packages, layout, init system, services) from targets."""
    from puppetops.plans.facts import facts as facts_plan

    def row(target: str, gathered: dict) -> tuple:
        packages = gathered.get("packages") or {}
        running = gathered.get("services") or {}
        return (target, gathered.get("os_name", ""), gathered.get("puppet_layout"),
                gathered.get("init", ""),
                " ".join(f"{k}={v}" for k, v in sorted(packages.items()) if k.startswith("puppet")),
                " ".join(k for k, v in running.items() if v))

    def show(run, chosen):
        rs = facts_plan(run, targets=chosen)
        if format == "human":
            print(tabulate([row(r.target, r.value or {}) for r in rs],
                           headers=("target", "os", "layout", "init", "puppet packages", "running")))

    execute(show, targeting=Targeting(given=targets, default="all", confined=True),
            inventory=inventory, format=format, concurrency=concurrency, attempts=attempts, noop=noop,
            log_file=log_file, strict=strict, timeout=timeout, rerun=rerun,
            max_fail_percentage=max_fail_percentage)
