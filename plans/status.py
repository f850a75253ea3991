"""The ``status`` plan: is the Puppet infrastructure healthy? One round of parallel reads —
one remote script per host — judged into one document (``puppetops.steps.status``)."""
from __future__ import annotations

from datetime import datetime, timezone

from puppetops.errors import UsageError
from puppetops.params import Count, TargetSpec, requires
from puppetops.plan_registry import plan
from puppetops.steps.code import provision
from puppetops.steps.status.gather import MAIN, PUPPETDB, reader, roles
from puppetops.steps.status.health import FleetStatus, Thresholds, judge


def _thresholds(warn_days: int, error_days: int) -> None:
    if error_days > warn_days:
        raise UsageError(f"error_days ({error_days}) must not be more than warn_days "
                         f"({warn_days})")


@plan
@requires(_thresholds)
def status(run, targets: TargetSpec = "all", warn_days: Count = 90, error_days: Count = 30,
           unreported_hours: Count = 2) -> FleetStatus:
    """Is the Puppet infrastructure healthy? Servers, code, load balancers, CA, agents.

    Reads every host once, in parallel, and changes nothing: each Puppet Server's services
    and JVM heap, the commit of each environment on each server, every load balancer's
    members, the CA's pending requests and certificate expiry, PuppetDB, the agents' last
    reports. The result's ``ok`` is False when something needs attention.

    Args:
        targets: the hosts to read
        warn_days: warn about a certificate or CRL with fewer days left than this
        error_days: an error for a certificate or CRL with fewer days left than this
        unreported_hours: an error for an agent that has not reported for this many hours
    """
    chosen = run.targets(targets)
    everyone = run.inventory.targets
    puppetdb_group = any(PUPPETDB in t.groups for t in everyone)
    results = run.each("status", reader(puppetdb_group), chosen, catch_errors=True)
    main = next((t for t in everyone if MAIN in t.groups), None)
    return judge(((r.target, r.ok, r.value if r.ok else r.message) for r in results),
                 now=datetime.now(timezone.utc),
                 thresholds=Thresholds(warn_days, error_days, unreported_hours),
                 control_repo=provision.remote(main) if main else None,
                 roles={t.name: roles(t) for t in chosen})
