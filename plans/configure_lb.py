"""The ``configure_lb`` plan: the load balancers in front of the compilers
(``steps.lb.balance``, which add_compiler uses too)."""
from __future__ import annotations

from puppetops.params import TargetSpec
from puppetops.plan_registry import plan
from puppetops.puppet import node
from puppetops.run import Run
from puppetops.steps.lb import backends, pool
from puppetops.steps.lb.balance import balance


@plan(main="main")
def configure_lb(run: Run, targets: TargetSpec = "loadbalancers",
                 compilers: TargetSpec = "compilers", main: TargetSpec = "main") -> None:
    """Configure the load balancers (HAProxy or nginx per lb_backend) over the compilers.

    Load balancers: HAProxy (or nginx, per host var lb_backend) on 8140 over the compilers.

    Every LB host balances exactly the ``compilers`` (TCP, least connections; HAProxy checks
    /status/v1/simple, keeps runtime states across reloads, admin socket on) and must see
    them all UP. ``main``: the main server, where the run holds the infrastructure lock.

    Args:
        compilers: the compilers to balance
    """
    lbs = run.targets(targets)
    node.validate(lbs, backends.of)
    wanted = [pool.member(c) for c in run.targets(compilers)]
    balance(run, lbs, {t.name: wanted for t in lbs}, {t.name: wanted for t in lbs})
