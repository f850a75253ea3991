"""puppetops: run the lifecycle of a multi-compiler Puppet infrastructure over SSH.

The public API, for plans and for other tools that import puppetops::

    from puppetops import Run, Inventory, plan, Step, Cohort, single
    from puppetops.plans import facts

    with Run.from_inventory("inventory.yaml") as run:
        results = facts(run, targets="compilers")
        for r in results.error_set:
            print(r.target, r.message)

Names are imported on first use (PEP 562): ``import puppetops`` alone is instant, so the console
script can answer a Ctrl-C pressed while the rest (paramiko, Invoke, every plan) still loads.
"""
from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

# public name → the module that defines it
_EXPORTS = {
    **dict.fromkeys(("EXIT_FAILED", "EXIT_LOCKED", "EXIT_OK", "EXIT_USAGE", "InventoryError",
                     "LockHeld", "PlanFailure", "PuppetopsError", "StepError", "TargetNotFound",
                     "TransportError", "UsageError"), "errors"),
    "Executor": "executor",
    **dict.fromkeys(("Cohort", "changed", "single"), "flow"),
    "Inventory": "inventory",
    "RunLock": "lock",
    **dict.fromkeys(("Output", "make_output"), "output"),
    **dict.fromkeys(("discover", "get_plan", "plan"), "plan_registry"),
    **dict.fromkeys(("Notes", "Result", "ResultSet"), "result"),
    "Run": "run",
    **dict.fromkeys(("Call", "Finding", "Outcome", "Step", "StepContext"), "step"),
    "Target": "target",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'puppetops' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_EXPORTS})
