"""Trapperkeeper JVM services (Puppet Server, PuppetDB) where no systemd runs them.

Both packages ship a systemd unit of the same shape: ``java $JAVA_ARGS MAIN --config CONFD
--bootstrap-config BOOTSTRAP --restart-file RUNDIR/restart`` as the service's user, with the
defaults file's environment, in a run directory the unit creates (RuntimeDirectory=) and whose
restart file ExecStartPre= sets to 0. The JVM writes 1 there once it is up, and again after a
reload ("write 0, SIGHUP"). This builds the supervised-daemon form of such a unit.
"""
from __future__ import annotations

import shlex
from typing import Sequence

from ..errors import StepError
from ..polling import wait_until
from ..step import StepContext
from .services import Daemon


def jvm_daemon(*, user: str, defaults: str, jvm_main: Sequence[str], confd: str,
               bootstrap_config: str, restart_file: str, pidfile: str, log: str) -> Daemon:
    """The unit's ExecStart as a ``Daemon``: detached with ``setsid`` (never ``nohup``: the
    JVM would then ignore SIGHUP and a reload would silently do nothing — lab pitfall P3),
    umask 027, the user's groups (PuppetDB reads the Puppet key as group puppet)."""
    u = shlex.quote(user)
    java = " ".join(shlex.quote(a) for a in jvm_main)
    script = (
        f"set -a; . {shlex.quote(defaults)}; set +a; umask 027; cd /; "
        f'exec setpriv --reuid={u} --regid={u} --init-groups "${{JAVA_BIN:-/usr/bin/java}}" '
        f"$JAVA_ARGS {java} --config {shlex.quote(confd)} "
        f"--bootstrap-config {shlex.quote(bootstrap_config)} "
        f"--restart-file {shlex.quote(restart_file)} $TK_ARGS")
    return Daemon(command=f"/bin/sh -c {shlex.quote(script)}", pidfile=pidfile, log=log)


def prepare_rundir(rundir: str, restart_file: str, user: str) -> str:
    """What the unit's RuntimeDirectory= and ExecStartPre= do: the run dir, restart flag 0."""
    d, f, u = shlex.quote(rundir), shlex.quote(restart_file), shlex.quote(user)
    return f"install -d -o {u} -g {u} -m 755 {d} && printf 0 > {f} && chown {u}:{u} {f}"


def restarted_flag(restart_file: str) -> str:
    """A shell test: the JVM has finished starting or reloading."""
    return f'[ "$(head -c1 {shlex.quote(restart_file)} 2>/dev/null)" = 1 ]'


def reload_script(restart_file: str, pidfile: str) -> str:
    """The unit's ExecReload: write 0 to the restart file, SIGHUP the JVM."""
    return f"printf 0 > {shlex.quote(restart_file)} && kill -HUP $(cat {shlex.quote(pidfile)})"


_POLLS = 5  # readiness probes per remote call of wait_ready


def wait_ready(ctx: StepContext, service: str, url: str, *, probe: str, daemon: Daemon | None,
               restart_file: str, log: str, timeout: float) -> None:
    """Wait until ``probe`` (a shell test) passes — for a supervised ``daemon``, also its
    restart flag; fail at once, with the end of ``log``, if the process died. The remote loop
    runs a few seconds at a time, so an interrupted run stops waiting promptly."""
    ctx.waiting_for(f"{service} to answer {url} (up to {int(timeout)}s)")
    alive = daemon.running_test() if daemon else "true"
    flag = f"{restarted_flag(restart_file)} && " if daemon else ""
    script = (f"for i in $(seq {_POLLS}); do {alive} || exit 3; "
              f"{flag}{probe} && exit 0; sleep 1; done; exit 4")
    # exit 4: not ready yet, look again (ctx.sleep raises Interrupted when the run must stop)
    out = wait_until(lambda: ctx.run(script, check=False, timeout=_POLLS * 6 + 30),
                     lambda out: out.exit_code != 4, timeout, 0, sleep=ctx.sleep)
    if out.ok:
        return
    tail = ctx.run(f"tail -n 15 {shlex.quote(log)}", check=False).stdout.strip()
    what = "exited" if out.exit_code == 3 else f"was not ready after {int(timeout)}s"
    raise StepError(f"{service} {what} ({url}); last lines of {log}:\n{tail}")
