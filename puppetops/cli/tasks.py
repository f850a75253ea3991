"""The core commands: inventory, plans, plan, command, upload, facts."""
from __future__ import annotations

import json

from invoke import task
from tabulate import tabulate

from ..errors import PuppetopsError, UsageError
from ..plan import discover, get_plan
from .options import help_for
from .parsing import KeyValueTask
from .runner import execute, fail, load_inventory

RUN_OPTIONS = ("inventory", "format", "concurrency", "attempts", "noop", "log_file", "strict",
               "timeout")


def _select(inv, targets):
    try:
        return inv.select(targets)
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
        print(json.dumps(inv.to_dict(selected), indent=2, sort_keys=True))
        return
    rows = [(t.name, ",".join(t.aliases), t.transport, t.user or "", t.host or "", t.port or "",
             ",".join(sorted(g for g in t.groups if g != "all"))) for t in selected]
    print(tabulate(rows, headers=("target", "aliases", "transport", "user", "host", "port",
                                  "groups")))


@task
def plans(c):
    """List the plans: installed ones and those in ./plans."""
    rows = [(info.name, info.summary) for info in sorted(discover().values(), key=lambda i: i.name)]
    print(tabulate(rows, headers=("plan", "description")))


@task(help=help_for(*RUN_OPTIONS, "targets",
                    params="plan parameters as key=value ... (after the plan name)"),
      klass=KeyValueTask, positional=["name", "params"], iterable=["params"])
def plan(c, name, params=None, targets=None, inventory=None, format="human", concurrency=100,
         attempts=None, noop=False, log_file=None, strict=False, timeout=None):
    """Run any plan: invoke plan NAME key=value ...  (`invoke plans` lists them)."""
    try:
        info = get_plan(name)
        raw = dict(_split(p) for p in params or [])
        if targets is not None:
            raw.setdefault("targets", targets)
        kwargs = info.coerce(raw)
    except UsageError as exc:
        raise fail(exc) from None

    def check_targets(inv):
        if "targets" in kwargs:
            inv.select(kwargs["targets"])

    execute(lambda run: info.fn(run, **kwargs), prepare=check_targets, inventory=inventory,
            format=format, concurrency=concurrency, attempts=attempts, noop=noop,
            log_file=log_file, strict=strict, timeout=timeout)


def _choosing(chosen: list, targets: str):
    """``prepare`` for a run confined to ``targets``: fills ``chosen`` with them and returns
    them, so the run locks only their hosts (see ``runner.execute``)."""
    def prepare(inv) -> list:
        chosen.extend(inv.select(targets))
        return chosen
    return prepare


def _split(pair: str) -> tuple[str, str]:
    key, sep, value = pair.partition("=")
    if not sep or not key:
        raise UsageError(f"plan parameter {pair!r}: expected key=value")
    return key, value


@task(help=help_for(*RUN_OPTIONS, "targets", command="the shell command to run",
                    run_as="run as this user through sudo"))
def command(c, command, targets, inventory=None, format="human", concurrency=100, attempts=None,
            noop=False, log_file=None, strict=False, timeout=None, run_as=None):
    """Run a shell command on targets (like `bolt command run`)."""
    from ..steps import RunCommand
    chosen = []
    execute(lambda run: run.step(RunCommand(command, run_as=run_as), chosen, catch_errors=True),
            prepare=_choosing(chosen, targets), inventory=inventory,
            format=format, concurrency=concurrency, attempts=attempts, noop=noop,
            log_file=log_file, strict=strict, timeout=timeout)


@task(help=help_for(*RUN_OPTIONS, "targets", source="local file", destination="remote path",
                    mode="file mode in octal, e.g. 0644"))
def upload(c, source, destination, targets, mode=None, inventory=None, format="human",
           concurrency=100, attempts=None, noop=False, log_file=None, strict=False, timeout=None):
    """Upload a file to targets (like `bolt file upload`); unchanged where it already matches."""
    from ..steps import Upload
    try:
        step = Upload(source, destination, mode=int(mode, 8) if mode else None)
    except (OSError, ValueError) as exc:
        raise fail(UsageError(f"upload: {exc}")) from None
    chosen = []
    execute(lambda run: run.step(step, chosen, catch_errors=True),
            prepare=_choosing(chosen, targets), inventory=inventory,
            format=format, concurrency=concurrency, attempts=attempts, noop=noop,
            log_file=log_file, strict=strict, timeout=timeout)


@task(help=help_for(*RUN_OPTIONS, "targets"))
def facts(c, targets="all", inventory=None, format="human", concurrency=100, attempts=None,
          noop=False, log_file=None, strict=False, timeout=None):
    """Gather facts (OS, Puppet packages, layout, init system, services) from targets."""
    from puppetops.plans.facts import facts as facts_plan

    def row(target: str, gathered: dict) -> tuple:
        packages = gathered.get("packages") or {}
        running = gathered.get("services") or {}
        return (target, gathered.get("os_name", ""), gathered.get("puppet_layout"),
                gathered.get("init", ""),
                " ".join(f"{k}={v}" for k, v in sorted(packages.items()) if k.startswith("puppet")),
                " ".join(k for k, v in running.items() if v))

    def show(run):
        rs = facts_plan(run, targets=targets)
        if format == "human":
            print(tabulate([row(r.target, r.value or {}) for r in rs],
                           headers=("target", "os", "layout", "init", "puppet packages", "running")))

    execute(show, prepare=lambda inv: inv.select(targets), inventory=inventory, format=format,
            concurrency=concurrency, attempts=attempts, noop=noop, log_file=log_file,
            strict=strict, timeout=timeout)
