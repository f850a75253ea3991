"""puppetops: run the lifecycle of a multi-compiler Puppet infrastructure over SSH.

The public API, for plans and for other tools that import puppetops::

    from puppetops import Run, Inventory, plan, Step, Cohort, single
    from puppetops.plans import facts

    with Run.from_inventory("inventory.yaml") as run:
        results = facts(run, targets="compilers")
        for r in results.error_set:
            print(r.target, r.message)
"""
__version__ = "0.1.0"

from .errors import (EXIT_FAILED, EXIT_LOCKED, EXIT_OK, EXIT_USAGE, InventoryError, LockHeld,  # noqa: E402
                     PlanFailure, PuppetopsError, StepError, TargetNotFound, TransportError,
                     UsageError)
from .executor import Executor  # noqa: E402
from .flow import Cohort, changed, single  # noqa: E402
from .inventory import Inventory  # noqa: E402
from .lock import RunLock  # noqa: E402
from .output import Output, make_output  # noqa: E402
from .plan import discover, get_plan, plan  # noqa: E402
from .result import Notes, Result, ResultSet  # noqa: E402
from .run import Run  # noqa: E402
from .step import Call, Finding, Outcome, Step, StepContext  # noqa: E402
from .target import Target  # noqa: E402

__all__ = [
    "Call", "Cohort", "EXIT_FAILED", "EXIT_LOCKED", "EXIT_OK", "EXIT_USAGE", "Executor", "Finding",
    "Inventory", "InventoryError", "LockHeld", "Notes", "Outcome", "Output", "PlanFailure",
    "PuppetopsError", "Result", "ResultSet", "Run", "RunLock", "Step", "StepContext", "StepError",
    "Target", "TargetNotFound", "TransportError", "UsageError", "changed", "discover", "get_plan",
    "make_output", "plan", "single",
]
