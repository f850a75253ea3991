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

from ..errors import StepError
from ..polling import wait_until
from ..puppet.layout import Layout
from ..step import StepContext
from .services import Daemon, init_system

START_TIMEOUT = 300
_POLLS = 5  # readiness probes per remote call of wait_ready
SERVICE = "puppetserver"


def daemon(layout: Layout) -> Daemon:
    """The supervised-daemon form of the package's systemd unit."""
    user = shlex.quote(layout.server_user)
    restart = shlex.quote(layout.server_restart_file)
    java = " ".join(shlex.quote(a) for a in layout.server_jvm_main)
    script = (
        f"set -a; . {shlex.quote(layout.server_defaults)}; set +a; umask 027; cd /; "
        f'exec setpriv --reuid={user} --regid={user} --init-groups "${{JAVA_BIN:-/usr/bin/java}}" '
        f"$JAVA_ARGS {java} --config {shlex.quote(layout.server_confd)} "
        f"--bootstrap-config {shlex.quote(layout.server_bootstrap_config)} "
        f"--restart-file {restart} $TK_ARGS")
    return Daemon(command=f"/bin/sh -c {shlex.quote(script)}", pidfile=layout.server_pidfile,
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


def _prepare_rundir(layout: Layout) -> str:
    """What the unit's RuntimeDirectory= and ExecStartPre= do: the run dir, restart flag 0."""
    d, f = shlex.quote(layout.server_rundir), shlex.quote(layout.server_restart_file)
    u = shlex.quote(layout.server_user)
    return f"install -d -o {u} -g {u} -m 755 {d} && printf 0 > {f} && chown {u}:{u} {f}"


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
        ctx.run(_prepare_rundir(layout))
        ctx.run(daemon(layout).start_script())


def stop(ctx: StepContext, layout: Layout) -> None:
    if not _packaged(ctx, "stop"):
        ctx.run(daemon(layout).stop_script(grace=60))


def reload(ctx: StepContext, layout: Layout) -> None:
    """Make a running server load changed config (not JAVA_ARGS: that needs a restart)."""
    if not _packaged(ctx, "reload"):
        f, p = shlex.quote(layout.server_restart_file), shlex.quote(layout.server_pidfile)
        ctx.run(f"printf 0 > {f} && kill -HUP $(cat {p})")


def wait_ready(ctx: StepContext, layout: Layout, host: str, timeout: int = START_TIMEOUT) -> None:
    """Wait until the server is ready; fail at once, with its log, if the process died. The
    remote loop runs a few seconds at a time, so an interrupted run stops waiting promptly."""
    ctx.waiting_for(f"puppetserver to answer {status_url(host)} (up to {int(timeout)}s)")
    curl = f"curl -sk --max-time 5 {shlex.quote(status_url(host))}"
    supervised = control(ctx) == "daemon"
    alive = daemon(layout).running_test() if supervised else "true"
    flag = f'[ "$(head -c1 {shlex.quote(layout.server_restart_file)} 2>/dev/null)" = 1 ] && ' \
        if supervised else ""
    script = (f"for i in $(seq {_POLLS}); do "
              f"{alive} || exit 3; "
              f'{flag}[ "$({curl})" = running ] && exit 0; sleep 1; done; exit 4')
    # exit 4: not ready yet, look again (ctx.sleep raises Interrupted when the run must stop)
    out = wait_until(lambda: ctx.run(script, check=False, timeout=_POLLS * 6 + 30),
                     lambda out: out.exit_code != 4, timeout, 0, sleep=ctx.sleep)
    if out.ok:
        return
    log = daemon(layout).log if supervised else f"{layout.server_logdir}/puppetserver.log"
    tail = ctx.run(f"tail -n 15 {shlex.quote(log)}", check=False).stdout.strip()
    what = "exited" if out.exit_code == 3 else f"was not ready after {timeout}s"
    raise StepError(f"puppetserver {what} ({status_url(host)}); last lines of {log}:\n{tail}")
