"""A command for every plan, generated from the plan itself: ``deploy_code`` becomes
``deploy-code``, its docstring the help, its parameters (typed by their hints, described by
the docstring's ``Args:`` section) the options, plus the run options every command takes.
Adding a plan is writing one module in ``plans/``; nothing here changes.

A command that shows a plan's result its own way (``status``: a table, JSON or Mermaid;
``facts``: a table) is made by ``plan_command`` from that plan, and keeps the plan's parameters
as they are declared there; ``plan NAME --param key=value`` runs any plan, generated command or
not.
"""
from __future__ import annotations

import sys
from dataclasses import replace
from typing import Any, Callable, Iterable

from ..output import FORMATS
from ..plan_registry import PlanInfo, broken_plans, discover, get_plan
from ..params import Param, describe
from ..run import Run
from .parsing import TypedTask, task_doc
from .runner import run_plan


def plan_task(info: PlanInfo, *, show: Callable[[Run, Any, Any], Any] | None = None,
              doc: Callable[..., Any] | None = None, formats: tuple[str, ...] = FORMATS,
              confined: bool = False, read_only: bool = False) -> TypedTask:
    """The command that runs ``info``'s plan: its parameters are the options; its help is the
    plan's docstring, or ``doc``'s. ``show``, ``formats``, ``confined``, ``read_only``: see
    ``plan_command``."""
    params = list(info.parameters.values())

    def run(c: Any, *, options: Any, **given: Any) -> None:
        targets = given.pop("targets", None)
        run_plan(info, given, options, targets=targets, confined=confined, read_only=read_only,
                 show=None if show is None else lambda run, found: show(run, found, options))

    return TypedTask(run, [_optional_targets(p) for p in params], name=info.name,
                     formats=formats, doc=task_doc(describe(doc or info.fn)))


def plan_command(name: str, *, formats: tuple[str, ...] = FORMATS, confined: bool = False,
                 read_only: bool = False) -> Callable[[Callable[..., Any]], TypedTask]:
    """Make ``show(run, result, options)`` the command running plan ``name`` that shows its result
    that way; ``show``'s docstring is the command's help. The options are the plan's
    parameters (declared once, in the plan) and the run options; ``formats``: the choices of
    ``--format``; ``confined``: lock only the chosen targets; ``read_only``: no run lock,
    no rerun file (``runner.execute``)."""
    def make(show: Callable[[Run, Any, Any], Any]) -> TypedTask:
        made = plan_task(get_plan(name), show=show, doc=show, formats=formats,
                         confined=confined, read_only=read_only)
        made.__module__ = show.__module__
        return made
    return make


def _optional_targets(p: Param) -> Param:
    """``--targets`` not given is None, so ``--rerun`` can pick them; the plan's own default
    applies when neither is given (``Targeting``)."""
    if p.name != "targets":
        return p
    default = "" if p.required else f" (default: {p.default})"
    return replace(p, default=None, help=p.help + default, nullable=True)


_WARNED: set[str] = set()  # each broken plan is said once per process


def plan_tasks(taken: Iterable[str]) -> list[TypedTask]:
    """A command for each plan found (``puppetops.plans`` and ./plans) whose name is not
    ``taken`` by a command already."""
    names = {n.replace("-", "_") for n in taken}
    found = discover()
    for why in sorted(set(broken_plans().values()) - _WARNED):  # the other commands still work
        _WARNED.add(why)
        print(f"warning: plan skipped: {why}", file=sys.stderr)
    for name in sorted(names & {n for n, info in found.items() if info.from_project}):
        if name not in _WARNED:  # the built-in command keeps its name; the plan is still there
            _WARNED.add(name)
            print(f"warning: plan {name} ({found[name].source}) has no command of its own: "
                  f"`{name.replace('_', '-')}` is a puppetops command; run the plan as "
                  f"`plan {name}`", file=sys.stderr)
    return [plan_task(info) for name, info in sorted(found.items()) if name not in names]
