"""The command line: one Invoke task collection, used by ``tasks.py`` and the ``puppetops`` script.

Tasks live in ``puppetops/cli/tasks.py`` (core) and ``puppetops/cli/*_tasks.py`` (one module per
area: lab, demo, webhook...); every module found is added here, then a command for every plan
that has none yet (``plan_tasks``: generated from the plan's signature and docstring).
"""
from __future__ import annotations

import importlib
import pkgutil

from invoke import Task

from .parsing import Commands
from .plan_tasks import plan_tasks


def build_namespace() -> Commands:
    ns = Commands()
    names = ["tasks"] + sorted(m.name for m in pkgutil.iter_modules(__path__)
                               if m.name.endswith("_tasks") and m.name != "plan_tasks")
    for name in names:
        module = importlib.import_module(f"{__name__}.{name}")
        for obj in vars(module).values():
            if isinstance(obj, Task) and obj.__module__ == module.__name__:
                ns.add_task(obj)
    for task in plan_tasks(ns.task_names):
        ns.add_task(task)
    return ns


namespace = build_namespace()
