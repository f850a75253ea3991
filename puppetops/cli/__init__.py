"""The command line: one Invoke task collection, used by ``tasks.py`` and the ``puppetops`` script."""
from __future__ import annotations

from invoke import Collection, Task

from . import tasks as core


def build_namespace() -> Collection:
    ns = Collection()
    modules = [core]
    try:
        from . import lab_tasks
        modules.append(lab_tasks)
    except ImportError:  # pragma: no cover - lab tasks are optional on non-Linux controllers
        pass
    for module in modules:
        for obj in vars(module).values():
            if isinstance(obj, Task) and obj.__module__ == module.__name__:
                ns.add_task(obj)
    return ns


namespace = build_namespace()
