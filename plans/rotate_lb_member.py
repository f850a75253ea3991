"""The ``rotate_lb_member`` plan: compilers taken out of the load balancer, maintained and put
back, in rolling batches, without failing a single agent run."""
from __future__ import annotations

from typing import Annotated, Callable

from puppetops.errors import PlanFailure, StepError
from puppetops.executor import batches
from puppetops.params import Check, Count, Seconds, TargetSpec
from puppetops.plan_registry import plan
from puppetops.run import Run
from puppetops.step import StepContext
from puppetops.steps import maintenance
from puppetops.steps.facts import gather
from puppetops.steps.lb import out_records, pool
from puppetops.steps.lb.backend import MAINT
from puppetops.steps.lb.left_out import put_back, warn_leftovers
from puppetops.steps.lb.membership import (LbView, MembersIdle, MembersOut, MembersReady, known,
                                           refusal, view)
from puppetops.steps.puppetserver import PuppetserverRunning
from puppetops.target import Target

PLAN = "rotate_lb_member"

# Checked as the command line is read: a name that is no built-in action and no plan is
# refused before anything else.
Action = Annotated[maintenance.ActionSpec, Check(maintenance.action)]


def preflight(names: list[str]) -> Callable[[StepContext], LbView]:
    """On one LB host: the members exist, another member keeps serving while they are out
    (if not, the refusal says why each other one is out and how to put it back), and none
    was drained by deploy_code (its code differs from its peers': putting it back is
    deploy_code's call, once the code is the same again) or by remove_compiler (on its way
    out for good)."""
    def check(ctx: StepContext) -> LbView:
        found = view(ctx)
        known(found.states, names)
        refused = refusal(found.states, names, found.records)
        if refused:
            raise StepError(refused)
        drained = {m: r for m, r in found.out_for(out_records.CODE_DIFFERS).items() if m in names}
        if drained:
            raise StepError("; ".join(f"{m} {r.describe()}: run deploy_code first ({r.fix(m)})"
                                      for m, r in drained.items()))
        leaving = {m: r for m, r in found.out_for(out_records.DECOMMISSIONED).items()
                   if m in names}
        if leaving:
            raise StepError("; ".join(f"{m} {r.describe()}, on its way out: {r.fix(m)}"
                                      for m, r in leaving.items()))
        return found
    return check


def rotate(run: Run, batch: list[Target], lbs: list[Target], action: maintenance.MaintenanceAction,
           drain_timeout: float, up_timeout: float) -> None:
    """One batch: preflight, drain, wait for its sessions to end, maintenance mode, the
    action, health gate, ready and UP. Each LB host records why the batch is out before it
    goes. A failure from the drain on stops the plan with the batch left out of the LB (the
    message says how to put it back); an interruption puts it back if its Puppet Server is
    healthy, and otherwise leaves it out and says so."""
    names = [pool.member(t).name for t in batch]
    per_lb = {t.name: names for t in lbs}
    warn_leftovers(run, run.each("LB preflight", preflight(names), lbs))
    record = out_records.taken_by(run.id, PLAN, out_records.MAINTENANCE)
    with run.on_interrupt(lambda: _undo(run, batch, lbs, up_timeout)):
        try:
            run.step(MembersOut(per_lb, record=record), lbs)
            run.step(MembersIdle(per_lb, wait=drain_timeout), lbs)
            run.step(MembersOut(per_lb, MAINT, record=record), lbs)
            action(run, batch)
            run.step(PuppetserverRunning(), batch)
            run.step(MembersReady(per_lb, wait=up_timeout, record=record), lbs)
        except PlanFailure as failure:
            why = "; ".join(f"{r.target}: {r.step}: {r.message}"
                            for r in failure.results.error_set)
            run.message(f"rotate_lb_member: stopped; {_left_out(names, lbs)} — {why or failure}")
            raise


def _undo(run: Run, batch: list[Target], lbs: list[Target], up_timeout: float) -> None:
    """The batch, interrupted while out: back in if healthy, else left out and said so."""
    left = put_back(run, PLAN, batch, lbs, up_timeout)
    if left:
        run.message(f"rotate_lb_member: interrupted; {_left_out(left, lbs)}")
    else:
        back = ", ".join(pool.member(t).name for t in batch)
        run.message(f"rotate_lb_member: interrupted; {back} serving in load balancing again")


def _left_out(names: list[str], lbs: list[Target]) -> str:
    hosts = ", ".join(t.name for t in lbs)
    return (f"{', '.join(names)} left out of load balancing on {hosts} (recorded there); once "
            f"healthy, `invoke lb-ready --targets {','.join(names)}` puts "
            f"{'it' if len(names) == 1 else 'them'} back")


@plan(main="main")
def rotate_lb_member(run: Run, targets: TargetSpec = "compilers",
                     loadbalancers: TargetSpec = "loadbalancers", batch_size: Count = 1,
                     action: Action = "restart", drain_timeout: Seconds = 600.0,
                     up_timeout: Seconds = 300.0, main: TargetSpec = "main") -> None:
    """Drain, maintain, health-check and re-add compilers, one batch at a time.

    Rotate compilers through maintenance, batch_size at a time: drain on every LB, wait
    until their sessions end (drain_timeout), maintenance mode, the action (restart |
    upgrade | a plan name), /status/v1/simple = running, ready, UP (up_timeout).

    Refuses to take a member out when no other member would be serving, or one deploy_code
    drained. A failure stops the plan with the batch left out of the LB; SIGINT/SIGTERM put
    it back if its Puppet Server is healthy. Either way, the LB hosts record why a member is
    out, and lb_ready puts it back. ``main``: the main server, where the run holds the
    infrastructure lock.

    Args:
        batch_size: members out at the same time
        action: maintenance: restart, upgrade (puppetserver package), or a plan name
        drain_timeout: seconds to wait for a drained member's sessions to end
        up_timeout: seconds to wait for a member to be UP again
    """
    chosen = maintenance.action(action)
    members, lbs = run.targets(targets), run.targets(loadbalancers)
    in_batches = batches(members, batch_size)
    run.each("facts", gather, [*members, *lbs])
    try:
        for batch in in_batches:
            rotate(run, batch, lbs, chosen, drain_timeout, up_timeout)
    except PlanFailure:
        pass  # the failed step is in the results; the summary reports it
