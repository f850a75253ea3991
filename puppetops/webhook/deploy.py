"""The plan boundary: what a deploy is, and the real one — the ``deploy_code`` plan.

The queue only knows ``DeployFunction``: (environment, commit) → ``Outcome``. The server uses
``plan_deployer``; tests and the benchmark pass their own function at this seam, so everything
in front of it (HTTP, signatures, queue, store) runs for real while the deploy is stubbed.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from ..errors import PlanFailure, PuppetopsError
from ..inventory import Inventory
from ..output import Output
from ..run import Run


@dataclass(frozen=True)
class Outcome:
    ok: bool
    result: Any = None  # JSON-able: the plan's per-server results
    error: str = ""


DeployFunction = Callable[[str, str], Outcome]


def plan_deployer(inventory: str, *, main: str = "main", targets: str = "main,compilers",
                  loadbalancers: str = "loadbalancers") -> DeployFunction:
    """Deploys with ``deploy_code`` for one environment on main and every compiler: same commit
    everywhere before any cache flush, drain on failure — the plan's own guarantees.

    The inventory is read again for each deploy, so a compiler added to it is deployed to
    without restarting the webhook. No run lock: deploys of different environments run at
    once (the plan serializes r10k per host with its own flock).
    """
    def deploy(environment: str, commit: str) -> Outcome:
        from puppetops.plans.deploy_code import deploy_code
        try:
            run = Run(Inventory.load(inventory), output=Output())
        except PuppetopsError as exc:
            return Outcome(False, None, str(exc))
        results, error = None, ""
        try:
            results = deploy_code(run, env=environment, targets=targets, main=main,
                                  loadbalancers=loadbalancers)
        except PlanFailure as exc:
            results, error = exc.results, str(exc)
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
    return deploy
