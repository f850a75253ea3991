"""Puppet Server process control on any host: systemd, an init script, or none at all.

Debian's puppetserver ships only a systemd unit (no /etc/init.d script, and ``puppetserver
start|reload`` just call ``service``), so on hosts without systemd — containers, our lab — we
run it the way the unit does: ``java $JAVA_ARGS ... --restart-file RUNDIR/restart`` as user
puppet, with the defaults file's environment and umask 027, detached with ``setsid`` (never
``nohup``: the JVM then ignores SIGHUP and reload silently does nothing — lab pitfall P3),
output to a log, stdin from /dev/null, PID in a pid file. The JVM writes 1 to the restart
file once it is up, and again after a reload; a reload is "write 0, SIGHUP the JVM", exactly
the unit's ExecReload. Readiness is that flag *and* ``/status/v1/simple`` answering
``running``; the unit allows 300 s (TimeoutStartSec), so do we.
"""
from __future__ import annotations

import shlex

from ..puppet.layout import Layout
from ..step import StepContext
from . import trapperkeeper
from .services import Daemon, init_system

START_TIMEOUT = 300
SERVICE = "puppetserver"


def daemon(layout: Layout) -> Daemon:
    """The supervised-daemon form of the package's systemd unit."""
    return trapperkeeper.jvm_daemon(
        user=layout.server_user, defaults=layout.server_defaults, jvm_main=layout.server_jvm_main,
        confd=layout.server_confd, bootstrap_config=layout.server_bootstrap_config,
        restart_file=layout.server_restart_file, pidfile=layout.server_pidfile,
        log=f"{layout.server_logdir}/puppetserver-daemon.log")


def control(ctx: StepContext) -> str:
    """``systemd``, ``initd`` (a package init script) or ``daemon`` (we supervise it)."""
    if init_system(ctx) == "systemd":
        return "systemd"
    return "initd" if ctx.test(f"[ -x /etc/init.d/{SERVICE} ]") else "daemon"


def running(ctx: StepContext, layout: Layout) -> bool:
    """Whether the Puppet Server process is up (not whether it is ready yet)."""
    how = control(ctx)
    if how == "systemd":
        return ctx.test(f"systemctl is-active --quiet {SERVICE}")
    if how == "initd":
        return ctx.test(f"/etc/init.d/{SERVICE} status >/dev/null 2>&1")
    return ctx.test(daemon(layout).running_test())


def status_url(host: str, port: int = 8140) -> str:
    return f"https://{host}:{port}/status/v1/simple"


def ready(ctx: StepContext, host: str, port: int = 8140) -> bool:
    """``/status/v1/simple`` answers ``running`` (open to anyone in the default auth.conf)."""
    out = ctx.run(f"curl -sk --max-time 5 {shlex.quote(status_url(host, port))}", check=False)
    return out.ok and out.stdout.strip() == "running"


def _packaged(ctx: StepContext, action: str) -> bool:
    """Do ``action`` through systemd or the package's init script when the host has one;
    False when there is neither and we supervise the JVM ourselves."""
    how = control(ctx)
    if how == "daemon":
        return False
    ctx.run(f"systemctl {action} {SERVICE}" if how == "systemd"
            else f"/etc/init.d/{SERVICE} {action}")
    return True


def start(ctx: StepContext, layout: Layout) -> None:
    if not _packaged(ctx, "start"):
        ctx.run(trapperkeeper.prepare_rundir(layout.server_rundir, layout.server_restart_file,
                                             layout.server_user))
        ctx.run(daemon(layout).start_script())


def stop(ctx: StepContext, layout: Layout) -> None:
    if not _packaged(ctx, "stop"):
        ctx.run(daemon(layout).stop_script(grace=60))


def reload(ctx: StepContext, layout: Layout) -> None:
    """Make a running server load changed config (not JAVA_ARGS: that needs a restart)."""
    if not _packaged(ctx, "reload"):
        ctx.run(trapperkeeper.reload_script(layout.server_restart_file, layout.server_pidfile))


def wait_ready(ctx: StepContext, layout: Layout, host: str, timeout: int = START_TIMEOUT) -> None:
    """Wait until the server is ready; fail at once, with its log, if the process died."""
    supervised = control(ctx) == "daemon"
    trapperkeeper.wait_ready(
        ctx, SERVICE, status_url(host),
        probe=f'[ "$(curl -sk --max-time 5 {shlex.quote(status_url(host))})" = running ]',
        daemon=daemon(layout) if supervised else None, restart_file=layout.server_restart_file,
        log=daemon(layout).log if supervised else f"{layout.server_logdir}/puppetserver.log",
        timeout=timeout)
