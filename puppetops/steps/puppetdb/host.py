"""PuppetDB's host: which one it is — one rule for the plans and the CLI's ``--query`` — and
what plans do there: install_puppetdb and bootstrap_ca set PuppetDB up (``start_puppetdb``),
and the plans that add or remove servers keep its certificate allow-list current where it
runs (``installed_on``, ``allow``).
"""
from __future__ import annotations

from typing import Iterable

from ...errors import UsageError
from ...flow import changed
from ...inventory import Inventory
from ...puppet import node
from ...puppet.puppetdb import GROUP
from ...run import Run
from ...target import Target
from ..facts import gather
from .database import DatabaseConfig, DatabaseRole, postgres_running
from .server import (Allowlist, AllowlistSetting, HostCertificate, JettyConfig,
                     PuppetdbJavaArgs, PuppetdbPackages, PuppetdbRestarted, PuppetdbRunning,
                     PuppetdbStarted, SslAccess, installed)

MAIN = "main"


def puppetdb_host(inventory: Inventory, main: Target | None = None) -> Target:
    """PuppetDB's host: the ``puppetdb`` group's one host, else main — ``main`` when given (a
    plan's main server), else the ``main`` group's one host. A group that names more than
    one host is a usage error: PuppetDB runs on one."""
    found = _one_host(inventory, GROUP)
    if found is not None:
        return found
    if main is not None:
        return main
    found = _one_host(inventory, MAIN)
    if found is None:
        raise UsageError(f"the inventory has no {GROUP} or {MAIN} group to find PuppetDB on")
    return found


def _one_host(inventory: Inventory, group: str) -> Target | None:
    """The group's one host; None when the inventory has no such group, or it is empty."""
    found = inventory.select(group) if group in inventory.group_names else []
    if len(found) > 1:
        raise UsageError(f"the {group} group must hold one host (PuppetDB's), it holds "
                         f"{len(found)}")
    return found[0] if found else None


def installed_on(run: Run, main: Target) -> Target | None:
    """The PuppetDB host (as ``puppetdb_host`` picks it) if install_puppetdb has set it up
    there, else None: plans that change the servers keep PuppetDB current only where it is."""
    host = puppetdb_host(run.inventory, main)
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
    return [node.certname(t) for t in dict.fromkeys([main, *servers, *inventory_compilers(run)])]


def inventory_compilers(run: Run) -> list[Target]:
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
