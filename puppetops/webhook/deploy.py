"""The plan boundary: what a deploy and a removal are, and the real ones — the
``deploy_code`` and ``remove_environment`` plans.

The queue only knows ``DeployFunction``: (environment, commit) → ``Outcome`` and
``RemoveFunction``: (environment) → ``Outcome``. The server uses a ``PlanRunner``'s; tests and
the benchmark pass their own functions at this seam, so everything in front of it (HTTP,
signatures, queue, store) runs for real while the plans are stubbed.
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
    redeploy: str = ""  # a removal refused because the branch exists: deploy this head instead


DeployFunction = Callable[[str, str], Outcome]   # (environment, commit) → outcome
RemoveFunction = Callable[[str], Outcome]        # (environment) → outcome


class PlanRunner:
    """Runs the plans behind the webhook for one inventory: ``deploy`` (``deploy_code`` for one
    environment on main and every compiler: same commit everywhere before any cache flush,
    drain on failure — the plan's own guarantees) and ``remove`` (``remove_environment``: a
    deleted branch's environment off every server, refused while the branch exists).

    The inventory is read again for each run, so a compiler added to it is deployed to
    without restarting the webhook. Each run is a locked run like any other (the run lock
    on every host, the infrastructure lock on main), so it never overlaps an operator's
    ``invoke deploy-code`` or another controller's plan: while one holds the locks the run
    waits (up to ``lock_wait`` seconds, then it fails saying who holds them). For the same
    reason this process runs one plan at a time: environments queued at once take turns.
    """

    def __init__(self, inventory: str, *, main: str = "main", targets: str = "main,compilers",
                 loadbalancers: str = "loadbalancers", prefix: str = "",
                 lock_wait: float = 900.0):
        self.inventory, self.main, self.targets = inventory, main, targets
        self.loadbalancers, self.prefix, self.lock_wait = loadbalancers, prefix, lock_wait
        self._one_at_a_time = threading.Lock()

    def deploy(self, environment: str, commit: str) -> Outcome:
        from puppetops.plans.deploy_code import deploy_code
        outcome = self._locked(deploy_code, env=environment, targets=self.targets,
                               main=self.main, loadbalancers=self.loadbalancers)
        return Outcome(outcome.ok, {"commit_pushed": commit, **outcome.result}, outcome.error)

    def remove(self, environment: str) -> Outcome:
        from puppetops.plans.remove_environment import remove_environment
        branch = environment[len(self.prefix) + 1:] if self.prefix else environment
        return self._locked(remove_environment, env=environment, branch=branch,
                            targets=self.targets, main=self.main)

    def _locked(self, plan: Callable[..., Any], **params: str) -> Outcome:
        with self._one_at_a_time:
            deadline = time.monotonic() + self.lock_wait
            while True:
                try:
                    return _run_once(self.inventory, plan, params)
                except LockHeld as exc:
                    if time.monotonic() + LOCK_RETRY > deadline:
                        return Outcome(False, {"servers": []},
                                       f"{exc} (waited {self.lock_wait:.0f} s)")
                    time.sleep(LOCK_RETRY)


def _run_once(inventory: str, plan: Callable[..., Any], params: dict[str, str]) -> Outcome:
    """One locked run of ``plan``; ``LockHeld`` when another run holds a lock."""
    try:
        run = Run(Inventory.load(inventory), output=Output())
    except LockHeld:
        raise
    except PuppetopsError as exc:
        return Outcome(False, {"servers": []}, str(exc))
    from puppetops.plans.remove_environment import BranchExists
    results, error, redeploy = None, "", ""
    try:
        results = plan(run, **params)
    except PlanFailure as exc:
        results, error = exc.results, str(exc)
    except LockHeld:
        raise
    except BranchExists as exc:
        error, redeploy = str(exc), exc.commit
    except PuppetopsError as exc:
        error = str(exc)
    finally:
        run.close()
    servers = [r.to_dict() for r in results] if results is not None else []
    ok = not error and results is not None and results.ok
    if not ok and not error:
        error = "; ".join(f"{r.target}: {r.message}" for r in results.error_set) \
            or f"{plan.__name__} failed"
    return Outcome(ok, {"servers": servers}, error, redeploy)
