"""``status``: is my Puppet infrastructure healthy? (the ``status`` plan, shown as a table, a
JSON document or a Mermaid diagram; exit 1 when something needs attention)."""
from __future__ import annotations

from typing import Optional

from ..errors import NeedsAttention
from ..output import STATUS_FORMATS
from ..params import Count, TargetSpec
from .options import RunOptions
from .parsing import typed_task
from .runner import execute
from .targeting import Targeting


@typed_task(formats=STATUS_FORMATS)
def status(c, targets: Optional[TargetSpec] = None, warn_days: Count = 90,
           error_days: Count = 30, unreported_hours: Count = 2, *, options: RunOptions):
    """Is my Puppet infrastructure healthy? One table, read from every host at once.

    Each Puppet Server's services and JVM heap, the commit of each environment on each
    server (and whether they agree), every load balancer's members and sessions, the CA's
    pending requests and certificate expiry, PuppetDB when it is there, the agents' last
    reports. Changes nothing and takes no run lock. Exit 0 healthy, 1 something needs
    attention (named on stderr), 2 usage error. `--format mermaid` draws this fleet.

    Args:
        targets: the hosts to read (default all)
        warn_days: warn about a certificate or CRL with fewer days left than this
        error_days: an error for a certificate or CRL with fewer days left than this
        unreported_hours: an error for an agent that has not reported for this many hours
    """
    from puppetops.plans.status import status as status_plan

    def report(run, chosen):
        found = status_plan(run, targets=chosen, warn_days=warn_days, error_days=error_days,
                            unreported_hours=unreported_hours)
        run.output.status(found.document)
        if not found.ok:
            raise NeedsAttention(found.attention())

    execute(report, options, targeting=Targeting(given=targets, default="all", confined=True),
            read_only=True)
