"""The ``lb_ready`` plan: compilers a run left out of load balancing (interrupted, killed,
failed) put back — but only those whose Puppet Server is healthy (``steps.lb.left_out``,
which an interrupted rotate_lb_member's undo uses too).
"""
from __future__ import annotations

from puppetops.params import Seconds, TargetSpec
from puppetops.plan_registry import plan
from puppetops.puppet import node
from puppetops.run import Run
from puppetops.steps.facts import gather
from puppetops.steps.lb import pool
from puppetops.steps.lb.left_out import put_back, warn_leftovers
from puppetops.steps.lb.membership import view
from puppetops.steps.lb.out_records import CODE_DIFFERS


@plan(main="main")
def lb_ready(run: Run, targets: TargetSpec = "compilers",
             loadbalancers: TargetSpec = "loadbalancers", up_timeout: Seconds = 300.0,
             main: TargetSpec = "main") -> None:
    """Put compilers back in load balancing if their Puppet Server is healthy (after a run
    was interrupted or killed), and remove the records of why they were out.

    Put compilers back in load balancing on every LB (HAProxy or nginx), each only if its
    Puppet Server is healthy (/status/v1/simple = running; one still starting gets up to
    up_timeout to become so) and deploy_code did not drain it, wait until they serve
    (up_timeout), and remove the records of why they were out.

    For compilers an interrupted, killed or failed run left out. Idempotent: a compiler
    already serving with no record is left alone. ``main``: the main server, where the run
    holds the infrastructure lock.

    Args:
        up_timeout: seconds to wait for a starting Puppet Server to be healthy, and for a
            member to be UP again
    """
    compilers, lbs = run.targets(targets), run.targets(loadbalancers)
    node.validate(compilers, pool.member, node.certname)
    run.each("facts", gather, [*compilers, *lbs])
    views = run.each("LB members", view, lbs)
    warn_leftovers(run, views)
    drained = {m: r for res in views.ok_set for m, r in res.value.out_for(CODE_DIFFERS).items()}
    left = put_back(run, "lb_ready", compilers, lbs, up_timeout, drained, start_wait=up_timeout)
    if left:
        run.message(f"lb_ready: {', '.join(left)} still out of load balancing (see above)")
