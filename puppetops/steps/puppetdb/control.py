"""PuppetDB's process on its host: systemd where systemd runs, else a supervised daemon.

Debian's puppetdb 7.12.1-3 ships a systemd unit and an /etc/init.d script, but the script
starts ``clojure.main -m puppetlabs.puppetdb.main``, a namespace the jar does not have, and
without the ``services`` subcommand (docs/puppet-pitfalls.md, PuppetDB): it cannot start PuppetDB.
So without systemd we run the unit's command line ourselves, as for Puppet Server
(``trapperkeeper``). Health is ``/status/v1/services/puppetdb-status`` answering ``running``
over HTTPS on 8081 with the host's own Puppet certificate — which also proves the TLS setup
and the allow-list let a server in.
"""
from __future__ import annotations

import shlex

from ...puppet import puppetdb
from ...puppet.layout import Layout
from ...step import StepContext
from .. import trapperkeeper
from ..services import Daemon, init_system

SERVICE = "puppetdb"
START_TIMEOUT = 300  # the unit's TimeoutStartSec


def daemon(pdb: puppetdb.PuppetdbLayout) -> Daemon:
    """The supervised-daemon form of the package's systemd unit."""
    return trapperkeeper.jvm_daemon(
        user=pdb.user, defaults=pdb.defaults, jvm_main=pdb.jvm_main, confd=pdb.confd,
        bootstrap_config=pdb.bootstrap_config, restart_file=pdb.restart_file,
        pidfile=pdb.pidfile, log=f"{pdb.logdir}/puppetdb-daemon.log")


def _systemd(ctx: StepContext) -> bool:
    return init_system(ctx) == "systemd"


def running(ctx: StepContext, layout: Layout) -> bool:
    """Whether the PuppetDB process is up (not whether it is ready)."""
    if _systemd(ctx):
        return ctx.test(f"systemctl is-active --quiet {SERVICE}")
    return ctx.test(daemon(puppetdb.layout_of(layout)).running_test())


def start(ctx: StepContext, layout: Layout) -> None:
    """Start the process and return: a JVM takes a minute or two to answer (``wait_ready``)."""
    pdb = puppetdb.layout_of(layout)
    if _systemd(ctx):  # the unit's ExecStartPost would block until the JVM is up
        ctx.run(f"systemctl enable --quiet {SERVICE} && systemctl start --no-block {SERVICE}")
        return
    ctx.run(trapperkeeper.prepare_rundir(pdb.rundir, pdb.restart_file, pdb.user))
    ctx.run(daemon(pdb).start_script())


def stop(ctx: StepContext, layout: Layout) -> None:
    if _systemd(ctx):
        ctx.run(f"systemctl stop {SERVICE}")
    else:
        ctx.run(daemon(puppetdb.layout_of(layout)).stop_script(grace=60))


def status_url(certname: str) -> str:
    return f"{puppetdb.server_url(certname)}{puppetdb.STATUS_PATH}"


def probe(layout: Layout, certname: str) -> str:
    """A shell test: PuppetDB answers ``running`` to this host's own certificate."""
    ssl = puppetdb.host_ssl(layout, certname)
    curl = (f"curl -s --max-time 5 --cacert {shlex.quote(ssl.ca)} --cert {shlex.quote(ssl.cert)} "
            f"--key {shlex.quote(ssl.key)} {shlex.quote(status_url(certname))}")
    return f"{curl} | grep -q '\"state\" *: *\"running\"'"


def healthy(ctx: StepContext, layout: Layout, certname: str) -> bool:
    return ctx.test(probe(layout, certname))


def wait_ready(ctx: StepContext, layout: Layout, certname: str,
               timeout: int = START_TIMEOUT) -> None:
    """Wait until PuppetDB is healthy; fail at once, with its log, if the process died."""
    pdb = puppetdb.layout_of(layout)
    supervised = not _systemd(ctx)
    trapperkeeper.wait_ready(
        ctx, SERVICE, status_url(certname), probe=probe(layout, certname),
        daemon=daemon(pdb) if supervised else None, restart_file=pdb.restart_file,
        log=daemon(pdb).log if supervised else f"{pdb.logdir}/puppetdb.log", timeout=timeout)
