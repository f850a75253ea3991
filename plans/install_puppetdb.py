"""The ``install_puppetdb`` plan: PuppetDB beside main (or on the ``puppetdb`` group's host),
storing the catalogs, facts and reports of main and every compiler. What bootstrap_ca and the
plans that add or remove servers do with PuppetDB too is in ``steps.puppetdb.host``.
"""
from __future__ import annotations

from puppetops.errors import UsageError
from puppetops.flow import Cohort, changed, single
from puppetops.params import TargetSpec
from puppetops.plan_registry import plan
from puppetops.puppet import node
from puppetops.run import Run
from puppetops.steps.puppetdb.host import (allowed, inventory_compilers, puppetdb_host,
                                           start_puppetdb)
from puppetops.steps.puppetdb.server import PuppetdbRunning
from puppetops.steps.puppetdb.terminus import terminus_steps
from puppetops.steps.puppetserver import PuppetserverRefresh
from puppetops.target import Target


def connect_servers(run: Run, servers: list[Target], puppetdb_certname: str) -> None:
    """Each server stores in PuppetDB; those whose config changed reload (if running). A
    server that fails leaves the others to go on."""
    cohort = Cohort(run, servers)
    done = cohort.pipeline(terminus_steps(puppetdb_certname))
    cohort.step(PuppetserverRefresh(), only=[t for t in cohort.live if t.name in changed(done)])


@plan(main="main")
def install_puppetdb(run: Run, targets: TargetSpec = "main,compilers", main: TargetSpec = "main",
                     puppetdb_host: str = "") -> None:
    """Install PuppetDB and have main and every compiler store catalogs, facts and reports.

    On the PuppetDB host (the puppetdb group's, else main): puppetdb and PostgreSQL,
    database and role with a password generated there (kept in its database.ini only),
    JVM options (var puppetdb_java_args), TLS with the host's Puppet certificate, the
    certificate allow-list (main and the servers), PuppetDB running and healthy. Then on
    every server: the terminus package, puppetdb.conf, routes.yaml, puppet.conf
    (storeconfigs, reports = store,puppetdb), and a reload where something changed.

    Args:
        targets: the Puppet Servers that store in PuppetDB (and may use its API)
        main: the main server (CA)
        puppetdb_host: the host to run PuppetDB on (default: the puppetdb group's, else main)
    """
    ca = single(run, main, "main")
    host = _host(run, puppetdb_host, ca)
    servers = run.targets(targets)
    node.validate([ca, host, *servers, *inventory_compilers(run)], node.certname)
    node.validate([host], node.puppetdb_java_args)
    start_puppetdb(run, host, allowed(run, ca, servers))
    run.step(PuppetdbRunning(), [host])
    connect_servers(run, servers, node.certname(host))


def _host(run: Run, spec: str, main: Target) -> Target:
    try:
        return single(run, spec, "puppetdb_host") if spec else puppetdb_host(run.inventory, main)
    except UsageError as exc:
        raise UsageError(f"puppetdb_host: {exc}") from None
