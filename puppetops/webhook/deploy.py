"""The plan boundary: what a deploy is, and the real one — the ``deploy_code`` plan.

The queue only knows ``DeployFunction``: (environment, commit) → ``Outcome``. The server uses
``plan_deployer``; tests and the benchmark pass their own function at this seam, so everything
in front of it (HTTP, signatures, queue, store) runs for real while the deploy is stubbed.
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any, Callable

from ..errors import LockHeld, PlanFailure, PuppetopsError
from ..inventory import Inventory
from ..output import Output
from ..run import Run

LOCK_RETRY = 5.0  # seconds between attempts while another run holds the locks


@dataclass(frozen=True)
class Outcome:
    ok: bool
    result: Any = None  # JSON-able: the plan's per-server results
    error: str = ""


DeployFunction = Callable[[str, str], Outcome]


def plan_deployer(inventory: str, *, main: str = "main", targets: str = "main,compilers",
                  loadbalancers: str = "loadbalancers",
                  lock_wait: float = 900.0) -> DeployFunction:
    """Deploys with ``deploy_code`` for one environment on main and every compiler: same commit
    everywhere before any cache flush, drain on failure — the plan's own guarantees.

    The inventory is read again for each deploy, so a compiler added to it is deployed to
    without restarting the webhook. Each deploy is a locked run like any other (the run lock
    on every host, the infrastructure lock on main), so it never overlaps an operator's
    ``invoke deploy-code`` or another controller's plan: while one holds the locks the deploy
    waits (up to ``lock_wait`` seconds, then it fails saying who holds them). For the same
    reason this process runs one deploy at a time: environments queued at once take turns.
    """
    one_at_a_time = threading.Lock()

    def deploy(environment: str, commit: str) -> Outcome:
        with one_at_a_time:
            deadline = time.monotonic() + lock_wait
            while True:
                try:
                    return _deploy_once(inventory, environment, commit, main=main,
                                        targets=targets, loadbalancers=loadbalancers)
                except LockHeld as exc:
                    if time.monotonic() + LOCK_RETRY > deadline:
                        return Outcome(False, None, f"{exc} (waited {lock_wait:.0f} s)")
                    time.sleep(LOCK_RETRY)
    return deploy


def _deploy_once(inventory: str, environment: str, commit: str, **plan_targets: str) -> Outcome:
    """One locked run of ``deploy_code``; ``LockHeld`` when another run holds a lock."""
    from puppetops.plans.deploy_code import deploy_code
    try:
        run = Run(Inventory.load(inventory), output=Output())
    except LockHeld:
        raise
    except PuppetopsError as exc:
        return Outcome(False, None, str(exc))
    results, error = None, ""
    try:
        results = deploy_code(run, env=environment, **plan_targets)
    except PlanFailure as exc:
        results, error = exc.results, str(exc)
    except LockHeld:
        raise
    except PuppetopsError as exc:
        error = str(exc)
    finally:
        run.close()
    servers = [r.to_dict() for r in results] if results is not None else []
    ok = not error and results is not None and results.ok
    if not ok and not error:
        error = "; ".join(f"{r.target}: {r.message}" for r in results.error_set) \
            or "deploy_code failed"
    return Outcome(ok, {"commit_pushed": commit, "servers": servers}, error)
