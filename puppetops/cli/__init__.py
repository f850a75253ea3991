"""The command line: one Invoke task collection, used by ``tasks.py`` and the ``puppetops`` script.

Tasks live in ``puppetops/cli/tasks.py`` (core) and ``puppetops/cli/*_tasks.py`` (one module per
area: lab, stand-up, operations...); every module found is added here.
"""
from __future__ import annotations

import importlib
import pkgutil

from invoke import Collection, Task


def build_namespace() -> Collection:
    ns = Collection()
    names = ["tasks"] + sorted(m.name for m in pkgutil.iter_modules(__path__)
                               if m.name.endswith("_tasks"))
    for name in names:
        module = importlib.import_module(f"{__name__}.{name}")
        for obj in vars(module).values():
            if isinstance(obj, Task) and obj.__module__ == module.__name__:
                ns.add_task(obj)
    return ns


namespace = build_namespace()
