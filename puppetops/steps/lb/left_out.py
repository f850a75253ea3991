"""Members a run left out of load balancing (interrupted, killed, failed): every run that
reads an LB's members warns about them, and they go back only once their Puppet Server is
healthy.

lb_ready puts them back; rotate_lb_member's undo of an interrupted batch does the same, with
the same checks and the same steps — so both live here, below the plans.
"""
from __future__ import annotations

from typing import Callable, Mapping

from ...errors import StepError
from ...puppet import node
from ...result import ResultSet
from ...run import Run
from ...step import StepContext
from ...target import Target
from .. import puppetserver_control
from . import out_records, pool
from .membership import MembersReady
from .out_records import MAINTENANCE, OutRecord


def warn_leftovers(run: Run, views: ResultSet) -> None:
    """A warning for every member another run left out, from ``membership.view`` results."""
    for result in views.ok_set:
        for warning in result.value.leftovers(result.target, run.id):
            run.message(warning)


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
