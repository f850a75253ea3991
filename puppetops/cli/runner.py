"""Runs one CLI action inside a ``Run`` and turns its outcome into an exit code.

Every task goes through here, so they all share the same output formats, lock, log file,
rerun file, failure limit and exit codes: 0 all ok, 1 some target failed, 2 usage or
inventory error, 75 lock held, 130/143 interrupted by SIGINT/SIGTERM (which only ask the run
to stop: it ends at a step boundary, undoes what must not stay half done, and still reports —
see puppetops.interrupt).
"""
from __future__ import annotations

import sys
from dataclasses import replace
from typing import Any, Callable

from invoke.exceptions import Exit

from ..errors import Interrupted, LockHeld, PlanFailure, PuppetopsError, UsageError
from ..interrupt import on_signals
from ..inventory import Inventory
from ..output import is_closed_pipe, make_output
from ..params import check_rules
from ..plan_registry import PlanInfo
from ..puppet.vars import VARS
from ..rerun import Record, rerun_path
from ..run import Run
from ..target import Target
from .options import RunOptions, check_log_file, inventory_path
from .pipes import settle_stdout
from .targeting import Targeting


def load_inventory(path: str | None, strict: bool = False) -> Inventory:
    """The inventory, its vars checked against the ones the plans read (a misspelt or invalid
    one is a warning naming file and line); its warnings on stderr."""
    try:
        inventory = Inventory.load(inventory_path(path), strict=strict, var_table=VARS)
    except PuppetopsError as exc:
        raise Exit(f"error: {exc}", code=exc.exit_code) from None
    for warning in inventory.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    return inventory


def fail(exc: PuppetopsError) -> Exit:
    return Exit(f"error: {exc}", code=exc.exit_code)


def execute(action: Callable[[Run, str | None], Any], options: RunOptions, *,
            targeting: Targeting | None = None,
            prepare: Callable[[Inventory], Any] | None = None,
            accept: Callable[[str | None], Any] | None = None, read_only: bool = False) -> None:
    """Load the inventory, take the run lock, run ``action(run, targets)``, report, exit.

    ``targets`` is the spec ``targeting`` resolved (``--targets``, ``--rerun`` or the default;
    None without targeting). ``prepare(inventory)`` and the targeting run before the lock and
    any output, for checks that must fail cleanly (exit 2, nothing on stdout); so does
    ``accept(targets)``, once the targets are known (a plan's ``@requires`` rules).
    A ``confined`` targeting (a command on chosen targets) locks only their hosts; otherwise
    the run locks every host of the inventory (a plan may touch any).

    Before ``action`` starts, the transport settings of every target the specs select are
    checked (``Run.check``: key and known_hosts files, password variables, the transport):
    a mistake there is exit 2 with one line, nothing run.

    A ``read_only`` run (status: it changes nothing) takes no run lock, so it answers while a
    deploy or a rotation runs, and leaves the rerun file of the last run that did work alone.

    A run refused by a lock still reports, as a run that was skipped: its JSON document
    (``ok: false, skipped: "locked"``, the holder), its log file's ``run_end`` line, a line
    on stdout (so a cron job's redirect says why), and exits 75.
    """
    format, log_file, noop, rerun = options.format, options.log_file, options.noop, options.rerun
    try:
        if log_file is not None:
            check_log_file(log_file)
        if rerun is not None and targeting is None:
            raise UsageError("--rerun: this command has no targets to pick")
        if options.query is not None and targeting is None:
            raise UsageError("--query: this command has no targets to pick")
    except UsageError as exc:
        raise fail(exc) from None
    inv = load_inventory(options.inventory, options.strict)
    try:
        if prepare:
            prepare(inv)
        targets = replace(targeting, rerun=rerun, query=options.query).resolve(inv) \
            if targeting else None
        if accept:
            accept(targets)
    except PuppetopsError as exc:
        raise fail(exc) from None
    chosen = None if targets is None else inv.select(targets)
    confined = targeting is not None and targeting.confined
    record = None if read_only else Record(rerun_path(inv.path), inv.path,
                                           None if chosen is None else [t.name for t in chosen],
                                           exact=confined)
    output = make_output(format, log_file=log_file)
    try:
        run = Run(inv, output=output, concurrency=options.concurrency, attempts=options.attempts,
                  noop=noop, timeout=options.timeout,
                  max_fail_percentage=options.max_fail_percentage, record=record,
                  lock=False if read_only else chosen if confined else True,
                  lock_wait=options.wait_lock or 0.0)
    except LockHeld as exc:
        output.run_end({"ok": False, "run_id": None, "interrupted": None, "targets": 0,
                        "noop": noop, "duration": 0.0, **skipped(exc)})
        raise fail(exc) from None
    except PuppetopsError as exc:
        raise fail(exc) from None
    error = ""
    with on_signals(run.interruption, run.message):
        try:
            run.check(_chosen(inv, targeting, targets))
            action(run, targets)
        except LockHeld as exc:  # the infrastructure lock on main, taken as the plan starts
            run.close(**skipped(exc))
            raise fail(exc) from None
        except OSError as exc:  # our stdout's reader has gone (| head): the work is done anyway
            if not is_closed_pipe(exc):
                raise
        except Interrupted:
            pass  # the summary and run_end say so; the exit code too
        except PlanFailure as exc:
            error = str(exc)
        except UsageError as exc:  # a target's settings, or a plan parameter found bad once
            # the plan started
            run.pool.close()
            run.close_lock()
            raise fail(exc) from None
        except PuppetopsError as exc:
            error = str(exc)
        run.close(**({"error": error} if error else {}))
    if error and format == "human":
        print(f"error: {error}", file=sys.stderr)
    settle_stdout()
    if run.interrupted:
        print(f"interrupted by {run.interrupted}: stopped before the run's end (run "
              f"{run.id}); see the messages above", file=sys.stderr)
        raise Exit(code=run.interruption.error().exit_code)
    raise Exit(code=0 if run.ok and not error else 1)


def _chosen(inv: Inventory, targeting: Targeting | None, targets: str | None) -> list[Target]:
    """Every target the command's specs select: ``targets`` (from --targets, --rerun or the
    default) and the others (main=, loadbalancers=...)."""
    if targeting is None:
        return []
    specs = [targets, *targeting.others.values()]
    return [target for spec in specs if spec is not None for target in inv.select(spec)]


def skipped(exc: LockHeld) -> dict[str, Any]:
    """What the summary of a run a lock refused says: skipped, why, and who holds the lock."""
    return {"ok": False, "skipped": "locked", "error": str(exc), "locked": exc.resource,
            "holder": exc.holder}


def run_plan(info: PlanInfo, params: dict[str, Any], options: RunOptions,
             targets: str | None = None, label: str = "--targets", *,
             show: Callable[[Run, Any], Any] | None = None, confined: bool = False,
             read_only: bool = False) -> None:
    """Run the plan with its typed ``params`` on ``targets`` (None: ``--rerun``'s or the
    plan's own default), once every target spec — ``targets`` and the plan's other target
    parameters (main=, loadbalancers=...), given or default — selects something (exit 2,
    nothing run, if not) and the plan's ``@requires`` rules accept its parameters.

    ``show(run, result)``: what the command shows of the plan's result, besides the run's
    output; ``confined`` and ``read_only``: as for ``execute``.
    """
    specs = info.parameters
    targeting = None
    if "targets" in specs:
        default = specs["targets"].default
        others = {name: params.get(name, p.default) for name, p in specs.items()
                  if p.target_spec and name != "targets" and not p.required}
        targeting = Targeting(given=targets, default=None if specs["targets"].required else default,
                              label=label, others={k: v for k, v in others.items() if v is not None},
                              optional=not specs["targets"].required and default is None,
                              confined=confined)

    def given(chosen: str | None) -> dict[str, Any]:
        return {**params, **({"targets": chosen} if chosen is not None else {})}

    def run(run: Run, chosen: str | None) -> Any:
        value = info.fn(run, **given(chosen))
        if show is not None:
            show(run, value)
        return value

    execute(run, options, targeting=targeting, read_only=read_only,
            accept=lambda chosen: check_rules(info.fn, given(chosen)))
