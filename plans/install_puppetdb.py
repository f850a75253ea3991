"""The ``install_puppetdb`` plan: PuppetDB beside main (or on the ``puppetdb`` group's host),
storing the catalogs, facts and reports of main and every compiler.

Also the helpers bootstrap_ca and add_compiler use to install it in their own runs and keep
it current (``puppetdb_host``, ``installed_on``, ``allow``).
"""
from __future__ import annotations

from typing import Iterable

from puppetops.errors import UsageError
from puppetops.flow import Cohort, changed, single
from puppetops.params import TargetSpec
from puppetops.plan import plan
from puppetops.puppet import node
from puppetops.run import Run
from puppetops.steps.facts import gather
from puppetops.steps.puppetdb.database import DatabaseConfig, DatabaseRole, postgres_running
from puppetops.steps.puppetdb.server import (Allowlist, AllowlistSetting, HostCertificate,
                                             JettyConfig, PuppetdbJavaArgs, PuppetdbPackages,
                                             PuppetdbRestarted, PuppetdbRunning, PuppetdbStarted,
                                             SslAccess, installed)
from puppetops.steps.puppetdb.terminus import terminus_steps
from puppetops.steps.puppetserver import PuppetserverRefresh
from puppetops.target import Target

GROUP = "puppetdb"


def puppetdb_host(run: Run, spec: str, main: Target) -> Target:
    """PuppetDB's host: ``spec`` when given, else the ``puppetdb`` group's one host, else main."""
    if spec:
        return single(run, spec, "puppetdb_host")
    if GROUP in run.inventory.group_names and run.inventory.select(GROUP):
        return single(run, GROUP, f"the {GROUP} group")
    return main


def installed_on(run: Run, main: Target) -> Target | None:
    """The PuppetDB host (as ``puppetdb_host`` picks it) if install_puppetdb has set it up
    there, else None: plans that change the servers keep PuppetDB current only where it is."""
    host = puppetdb_host(run, "", main)
    run.each("facts", gather, [host])
    return host if run.each("PuppetDB installed", installed, [host])[0].value else None


def allow(run: Run, host: Target, certnames: Iterable[str], remove: Iterable[str] = ()) -> None:
    """PuppetDB's allow-list on ``host`` has ``certnames`` (and not ``remove``); a running
    PuppetDB restarts when it changed (a minute or two without PuppetDB: the servers' writes
    fail meanwhile), and must then answer again."""
    edited = run.step(Allowlist(certnames, remove), [host])
    if changed([edited]):
        run.step(PuppetdbRestarted(), [host])
    run.step(PuppetdbRunning(), [host])


def allowed(run: Run, main: Target, servers: Iterable[Target] = ()) -> list[str]:
    """The certnames on PuppetDB's allow-list: main, ``servers`` and every compiler of the
    inventory, even one not added yet — changing the list later costs a PuppetDB restart."""
    return [node.certname(t) for t in dict.fromkeys([main, *servers, *_compilers(run)])]


def _compilers(run: Run) -> list[Target]:
    """The inventory's compilers group (none when it has no such group)."""
    groups = run.inventory.group_names
    return run.inventory.select("compilers") if "compilers" in groups else []


def start_puppetdb(run: Run, host: Target, allowed: list[str]) -> None:
    """PuppetDB on ``host``: packages, PostgreSQL, database, JVM options, TLS, allow-list,
    and its process started (restarted when its config changed while it ran) — not waited for: its JVM takes a minute or more to answer,
    which bootstrap_ca overlaps with its own work."""
    run.each("facts", gather, [host])
    run.step(HostCertificate(), [host])
    steps = [PuppetdbPackages(), postgres_running(), DatabaseConfig(), DatabaseRole(),
             PuppetdbJavaArgs(), SslAccess(), JettyConfig(), AllowlistSetting(), Allowlist(allowed)]
    config = dict(zip(steps, run.pipeline(steps, [host])))
    if changed(config.values()):
        run.step(PuppetdbRestarted(), [host])
    run.step(PuppetdbStarted(), [host])


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
    node.validate([ca, host, *servers, *_compilers(run)], node.certname)
    node.validate([host], node.puppetdb_java_args)
    start_puppetdb(run, host, allowed(run, ca, servers))
    run.step(PuppetdbRunning(), [host])
    connect_servers(run, servers, node.certname(host))


def _host(run: Run, spec: str, main: Target) -> Target:
    try:
        return puppetdb_host(run, spec, main)
    except UsageError as exc:
        raise UsageError(f"puppetdb_host: {exc}") from None
