"""``status``: is my Puppet infrastructure healthy? (the ``status`` plan, shown as a table, a
JSON document or a Mermaid diagram; exit 1 when something needs attention). Its options are
the plan's parameters, as the plan declares them."""
from __future__ import annotations

from ..errors import NeedsAttention
from ..output import STATUS_FORMATS
from .plan_tasks import plan_command


@plan_command("status", formats=STATUS_FORMATS, confined=True, read_only=True)
def status(run, found, options):
    """Is my Puppet infrastructure healthy? One table, read from every host at once.

    Each Puppet Server's services and JVM heap, the commit of each environment on each
    server (and whether they agree), every load balancer's members and sessions, the CA's
    pending requests and certificate expiry, PuppetDB when it is there, the agents' last
    reports. Changes nothing and takes no run lock. Exit 0 healthy, 1 something needs
    attention (named on stderr), 2 usage error. `--format mermaid` draws this fleet.
    """
    run.output.status(found.document)
    if not found.ok:
        raise NeedsAttention(found.attention())
