"""A command for every plan, generated from the plan itself: ``deploy_code`` becomes
``deploy-code``, its docstring the help, its parameters (typed by their hints, described by
the docstring's ``Args:`` section) the options, plus the run options every command takes.
Adding a plan is writing one module in ``plans/``; nothing here changes.

A plan whose name is already a command keeps that command (``facts``: a table of what was
found); ``plan NAME --param key=value`` runs any plan, generated command or not.
"""
from __future__ import annotations

import sys
from dataclasses import replace
from typing import Any, Iterable

from ..plan import PlanInfo, broken_plans, discover
from ..params import Param, describe
from .parsing import TypedTask, task_doc
from .runner import run_plan


def plan_task(info: PlanInfo) -> TypedTask:
    """The command that runs ``info``'s plan."""
    params = list(info.parameters.values())

    def run(c: Any, *, options: Any, **given: Any) -> None:
        targets = given.pop("targets", None)
        run_plan(info, given, options, targets=targets)

    return TypedTask(run, [_optional_targets(p) for p in params], name=info.name,
                     doc=task_doc(describe(info.fn)))


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
