"""The ``configure_lb`` plan: the load balancers in front of the compilers.

Also the LB part of add_compiler (``balance``): the same steps, with the LB's current
members plus the new compilers.
"""
from __future__ import annotations

from typing import Mapping

from puppetops.params import TargetSpec
from puppetops.plan import plan
from puppetops.plans.lb_ready import warn_leftovers
from puppetops.puppet import node
from puppetops.run import Run
from puppetops.step import StepContext
from puppetops.steps.lb import backends, pool
from puppetops.steps.lb.membership import LbView, view
from puppetops.steps.lb.pool import Member
from puppetops.target import Target


def current_members(ctx: StepContext) -> list[Member]:
    """The compilers an LB host balances now (read from its config)."""
    return backends.of(ctx.target).current_members(ctx)


def _balancing(ctx: StepContext) -> LbView:
    """The LB host's members and out-of-LB records; none on a host that does not balance
    yet (a new one)."""
    return view(ctx) if backends.of(ctx.target).balancing(ctx) else LbView({}, {})


def balance(run: Run, lbs: list[Target], members: Mapping[str, list[Member]],
            up: Mapping[str, list[Member]]) -> None:
    """Each LB host balances ``members[lb]`` and sees ``up[lb]`` UP. An LB failure stops the
    plan: nothing can reach the compilers without it. Members another run left out are
    warned about first."""
    warn_leftovers(run, run.each("LB members", _balancing, lbs))
    for backend in backends.BACKENDS.values():
        chosen = [t for t in lbs if backends.of(t) is backend]
        if chosen:
            run.pipeline(backend.setup(members, up), chosen)


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
