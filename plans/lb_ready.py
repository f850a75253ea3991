"""The ``lb_ready`` plan: compilers a run left out of load balancing (interrupted, killed,
failed) put back — but only those whose Puppet Server is healthy.

Also the undo of an interrupted rotate_lb_member (``put_back``): the same checks, the same
steps.
"""
from __future__ import annotations

from typing import Callable, Mapping

from puppetops.errors import StepError
from puppetops.params import Seconds, TargetSpec
from puppetops.plan import plan
from puppetops.puppet import node
from puppetops.result import ResultSet
from puppetops.run import Run
from puppetops.step import StepContext
from puppetops.steps import puppetserver_control
from puppetops.steps.facts import gather
from puppetops.steps.lb import out_records, pool
from puppetops.steps.lb.membership import MembersReady, view
from puppetops.steps.lb.out_records import CODE_DIFFERS, MAINTENANCE, OutRecord
from puppetops.target import Target


def servable(drained: Mapping[str, OutRecord], start_wait: float = 0.0
             ) -> Callable[[StepContext], str]:
    """On a compiler: its Puppet Server answers /status/v1/simple with ``running`` — or, with
    ``start_wait``, its process is up and answers within that many seconds (a server still
    starting) — and deploy_code did not drain it (``drained``: member → record; its code
    differs from its peers', so only a consistent deploy may put it back)."""
    def check(ctx: StepContext) -> str:
        name = pool.member(ctx.target).name
        if name in drained:
            raise StepError(f"not put back: {drained[name].describe()}; {drained[name].fix(name)}")
        certname = node.certname(ctx.target)
        if puppetserver_control.ready(ctx, certname):
            return "running"
        layout = node.layout(ctx.target)
        if not (start_wait and puppetserver_control.running(ctx, layout)):
            raise StepError(f"not put back: Puppet Server is not healthy "
                            f"({puppetserver_control.status_url(certname)} does not answer "
                            "running)")
        try:
            puppetserver_control.wait_ready(ctx, layout, certname, timeout=start_wait)
        except StepError as exc:
            raise StepError(f"not put back: Puppet Server is still starting: {exc}") from None
        return "running"
    return check


def put_back(run: Run, plan_name: str, compilers: list[Target], lbs: list[Target], wait: float,
             drained: Mapping[str, OutRecord] | None = None, start_wait: float = 0.0
             ) -> list[str]:
    """The healthy ``compilers`` serve again on every LB and their records are removed;
    returns the members left out (not healthy, or not serving in time: those go back to
    maintenance, recorded as ``plan_name``'s if they had no record). ``start_wait``: how long
    a Puppet Server still starting may take to become healthy (see ``servable``)."""
    health = run.each("ready to serve", servable(drained or {}, start_wait), compilers,
                      catch_errors=True)
    back = [t for t in compilers if health.find(t.name).ok]
    left = [pool.member(t).name for t in compilers if t not in back]
    if back and lbs:
        names = [pool.member(t).name for t in back]
        record = out_records.taken_by(run.id, plan_name, MAINTENANCE)
        ready = run.step(MembersReady({t.name: names for t in lbs}, wait=wait, record=record),
                         lbs, catch_errors=True)
        if not ready.ok:
            left += names
    return left


def warn_leftovers(run: Run, views: ResultSet) -> None:
    """A warning for every member another run left out, from ``view`` results."""
    for result in views.ok_set:
        for warning in result.value.leftovers(result.target, run.id):
            run.message(warning)


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
