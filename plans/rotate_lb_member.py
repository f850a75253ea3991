"""The ``rotate_lb_member`` plan: compilers taken out of the load balancer, maintained and put
back, in rolling batches, without failing a single agent run."""
from __future__ import annotations

from typing import Callable

from puppetops.errors import PlanFailure, StepError, UsageError
from puppetops.plan import plan
from puppetops.plans.deploy_code import REASON as DEPLOY_REASON
from puppetops.plans.facts import gather
from puppetops.puppet import lb, lb_runtime, maintenance
from puppetops.puppet.flow import PlanSteps
from puppetops.puppet.lb_runtime import MAINT
from puppetops.result import ResultSet
from puppetops.run import Run
from puppetops.step import StepContext
from puppetops.steps.lb_member import MembersIdle, MembersOut, MembersReady, known, refusal
from puppetops.steps.puppetserver import PuppetserverRunning
from puppetops.target import Target

REASON = "rotate_lb_member"


def preflight(names: list[str]) -> Callable[[StepContext], dict[str, str]]:
    """On one LB host: the members exist, another member keeps serving while they are out,
    and none was drained by deploy_code (its code differs from its peers': putting it back
    is deploy_code's call, once the code is the same again)."""
    def check(ctx: StepContext) -> dict[str, str]:
        states = lb_runtime.states(ctx)
        known(states, names)
        refused = refusal(states, names)
        if refused:
            raise StepError(refused)
        stale = {m: why for m, why in lb_runtime.reasons(ctx).items()
                 if m in names and why.split(" ")[0] == DEPLOY_REASON}
        if stale:
            raise StepError(f"{', '.join(stale)} drained by deploy_code (its code differs from "
                            "the other servers'): run deploy_code first")
        return {n: f"{states[n].admin}/{'up' if states[n].up else 'down'}" for n in names}
    return check


def _batches(targets: list[Target], size: int) -> list[list[Target]]:
    if size < 1:
        raise UsageError(f"batch_size must be at least 1, got {size}")
    return [targets[i:i + size] for i in range(0, len(targets), size)]


def rotate(run: Run, batch: list[Target], lbs: list[Target], action: maintenance.Action,
           drain_timeout: float, up_timeout: float) -> None:
    """One batch: preflight, drain, wait for its sessions to end, maintenance mode, the
    action, health gate, ready and UP. A failure from the drain on stops the plan with the
    batch left out of the LB; the message says so."""
    names = [lb.member(t).name for t in batch]
    per_lb = {t.name: names for t in lbs}
    run.each("LB preflight", preflight(names), lbs)
    try:
        run.step(MembersOut(per_lb, reason=REASON), lbs)
        run.step(MembersIdle(per_lb, wait=drain_timeout), lbs)
        run.step(MembersOut(per_lb, MAINT, reason=REASON), lbs)
        action(run, batch)
        run.step(PuppetserverRunning(), batch)
        run.step(MembersReady(per_lb, wait=up_timeout), lbs)
    except PlanFailure as failure:
        why = "; ".join(f"{r.target}: {r.step}: {r.message}" for r in failure.results.error_set)
        run.message(f"rotate_lb_member: stopped; {', '.join(names)} left out of load balancing "
                    f"on {', '.join(t.name for t in lbs)} — {why or failure}")
        raise


@plan(main="main")
def rotate_lb_member(run: Run, targets: str = "compilers", loadbalancers: str = "loadbalancers",
                     batch_size: int = 1, action: maintenance.ActionSpec = "restart",
                     drain_timeout: float = 600.0, up_timeout: float = 300.0,
                     main: str = "main") -> ResultSet:
    """Rotate compilers through maintenance, batch_size at a time: drain on every LB, wait
    until their sessions end (drain_timeout), maintenance mode, the action (restart |
    upgrade | a plan name), /status/v1/simple = running, ready, UP (up_timeout).

    Refuses to take a member out when no other member would be serving. A failure stops
    the plan with the batch left out of the LB. ``main``: the main server, where the run
    holds the infrastructure lock.
    """
    chosen = maintenance.action(action)
    steps = PlanSteps(run)
    members, lbs = run.targets(targets), run.targets(loadbalancers)
    batches = _batches(members, batch_size)
    run.each("facts", gather, [*members, *lbs])
    try:
        for batch in batches:
            rotate(run, batch, lbs, chosen, drain_timeout, up_timeout)
    except PlanFailure:
        pass  # the failed step is in the results; the summary reports it
    return steps.summary("rotate_lb_member")
