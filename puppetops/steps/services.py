"""Service step: ensure a service runs (or not) whatever the host's init system.

Hosts with systemd use ``systemctl``; without it (containers, our lab) the package's
``/etc/init.d`` script is used when there is one; otherwise the service is a supervised
daemon: started with ``setsid`` (its own session, output to a log, stdin from /dev/null, so it
survives the SSH session and never holds the channel open) and tracked by a pid file.
"""
from __future__ import annotations

import shlex
from dataclasses import dataclass

from ..errors import StepError
from ..step import Step, StepContext


# A process counts as alive until it has exited: a zombie (exited, not yet reaped by an init
# that reaps lazily) has freed its ports and must not hold up a stop or pass for running.
_ALIVE = 'alive() { s=$(sed "s/.*) //" /proc/$1/stat 2>/dev/null) && [ "${s%% *}" != Z ]; }; '


@dataclass
class Daemon:
    """How to run a service that has no init script: its command line and pid file."""

    command: str
    pidfile: str
    log: str = "/dev/null"
    user: str | None = None

    def start_script(self) -> str:
        """Start detached (from ``/``, as daemons do: not from a folder its user may not
        read) unless it already runs, and return only once the pid file names the new process:
        a check right after (``running_test``) must not see a missing or stale pid file — on
        a persistent remote shell the next command follows within a millisecond."""
        # setpriv execs the command as the user (runuser would stay its parent, as root, and
        # the pid file would name runuser); its environment is that user's (HOME...)
        user = shlex.quote(self.user or "")
        cmd = self.command if not self.user else \
            f"setpriv --reuid={user} --regid=$(id -g {user}) --init-groups --reset-env -- " \
            f"{self.command}"
        p = shlex.quote(self.pidfile)
        return self._serialised(
            f"{self.running_test()} && exit 0; "
            f"rm -f {p}; setsid sh -c {shlex.quote(f'echo $$ > {self.pidfile}; cd /; exec {cmd}')} "
            f">>{shlex.quote(self.log)} 2>&1 </dev/null & "
            f"for i in $(seq 100); do [ -s {p} ] && exit 0; sleep 0.05; done; "
            f"echo 'no pid file after 5 s' >&2; exit 1")

    def running_test(self) -> str:
        p = shlex.quote(self.pidfile)
        return f"{_ALIVE}[ -s {p} ] && alive $(cat {p})"

    def stop_script(self, grace: int = 30) -> str:
        """TERM, then KILL after ``grace`` seconds, and return once the process is gone (a
        successor must not meet it still holding its port). The pid file goes only if it
        still names that process."""
        p = shlex.quote(self.pidfile)
        return self._serialised(
            f"{_ALIVE}pid=$(cat {p} 2>/dev/null); [ -n \"$pid\" ] || exit 0; "
            f"kill -TERM $pid 2>/dev/null; "
            f"for i in $(seq {grace * 10}); do alive $pid || break; sleep 0.1; done; "
            f"if alive $pid; then kill -KILL $pid; "
            f"for i in $(seq 100); do alive $pid || break; sleep 0.1; done; fi; "
            f'[ "$(cat {p} 2>/dev/null)" = "$pid" ] && rm -f {p}; exit 0', wait=grace + 30)

    def _serialised(self, script: str, wait: int = 120) -> str:
        """``script`` under a lock per pid file on the host: a stop left running by a
        controller that died (its SSH session gone, the shell still waiting for the process to
        end) is finished before another controller starts or stops the same daemon — it would
        otherwise remove the successor's pid file and leave a second, untracked process
        holding the port. ``-o``: the daemon started inside must not inherit the lock."""
        lock = shlex.quote(f"/run/lock/puppetops-daemon{self.pidfile.replace('/', '_')}.lock")
        return (f"mkdir -p /run/lock; flock -o -E 75 -w {wait} {lock} sh -c {shlex.quote(script)}; "
                f"rc=$?; [ $rc -ne 75 ] || echo 'daemon control busy for {wait} s' >&2; exit $rc")


def init_system(ctx: StepContext) -> str:
    """``systemd`` when PID 1 is systemd, else ``sysv``."""
    return "systemd" if ctx.test("[ -d /run/systemd/system ]") else "sysv"


class Service(Step):
    """Ensures service ``service`` is ``running`` or ``stopped``.

    ``daemon`` describes how to run it where neither systemd nor an init script exists.
    """

    name = "service"

    def __init__(self, service: str, ensure: str = "running", *, daemon: Daemon | None = None):
        if ensure not in ("running", "stopped"):
            raise ValueError("ensure must be 'running' or 'stopped'")
        super().__init__()
        self.service, self.ensure, self.daemon = service, ensure, daemon
        self.name = f"service {service} {ensure}"

    def _control(self, ctx: StepContext) -> str:
        if init_system(ctx) == "systemd":
            return "systemd"
        if ctx.test(f"[ -x /etc/init.d/{shlex.quote(self.service)} ]"):
            return "initd"
        if self.daemon:
            return "daemon"
        raise StepError(f"service {self.service}: no systemd, no /etc/init.d script and no "
                        "daemon definition to run it with")

    def _status_command(self, ctx: StepContext) -> str:
        s = shlex.quote(self.service)
        how = self._control(ctx)
        if how == "systemd":
            return f"systemctl is-active --quiet {s}"
        if how == "initd":
            return f"/etc/init.d/{s} status >/dev/null 2>&1"
        return self.daemon.running_test()

    def is_running(self, ctx: StepContext) -> bool:
        return ctx.test(self._status_command(ctx))

    def check(self, ctx: StepContext) -> str | None:
        running = self.is_running(ctx)
        if self.ensure == "running" and not running:
            return f"start {self.service}"
        if self.ensure == "stopped" and running:
            return f"stop {self.service}"
        return None

    def change(self, ctx: StepContext) -> None:
        action = "start" if self.ensure == "running" else "stop"
        s = shlex.quote(self.service)
        how = self._control(ctx)
        if how == "systemd":
            ctx.run(f"systemctl {action} {s}")
        elif how == "initd":
            ctx.run(f"/etc/init.d/{s} {action}")
        elif action == "start":
            ctx.run(self.daemon.start_script())
        else:
            ctx.run(self.daemon.stop_script())

    def verify(self, ctx: StepContext) -> None:
        """Wait up to 5 s: daemons take a moment to write their pid file or to exit."""
        status = self._status_command(ctx)
        settled = f"{{ {status}; }}" if self.ensure == "running" else f"! {{ {status}; }}"
        if not ctx.test(f"for i in $(seq 50); do {settled} && exit 0; sleep 0.1; done; exit 1"):
            raise StepError(f"service {self.service} is not {self.ensure} after the change")


class ServiceRestarted(Service):
    """Restarts a running service (for new code or config it reads only at start); use it
    only when something it depends on changed. A stopped one is simply started."""

    def __init__(self, service: str, *, daemon: Daemon | None = None):
        super().__init__(service, "running", daemon=daemon)
        self.name = f"service {service} restarted"

    def check(self, ctx: StepContext) -> str | None:
        return f"restart {self.service}" if self.is_running(ctx) else f"start {self.service}"

    def change(self, ctx: StepContext) -> None:
        how = self._control(ctx)
        s = shlex.quote(self.service)
        if how == "systemd":
            ctx.run(f"systemctl restart {s}")
        elif how == "initd":
            ctx.run(f"/etc/init.d/{s} restart")
        else:
            ctx.run(self.daemon.stop_script())
            ctx.run(self.daemon.start_script())

    def verify(self, ctx: StepContext) -> None:
        Service.verify(self, ctx)


def enabled_at_boot(ctx: StepContext, service: str) -> bool:
    """Whether the init system starts ``service`` at boot (systemd: enabled; sysv: a start
    link in a multi-user runlevel). A supervised daemon never is: nothing starts it but us."""
    s = shlex.quote(service)
    if init_system(ctx) == "systemd":
        return ctx.test(f"systemctl is-enabled --quiet {s}")
    return ctx.test(f"ls /etc/rc[2-5].d/S[0-9][0-9]{s} >/dev/null 2>&1")


class ServiceDisabled(Service):
    """Ensures ``service`` is stopped and stays so: not started at boot either (systemd
    ``disable``, sysv ``update-rc.d disable``). For a host taken out of the infrastructure,
    whose service must not come back by itself after a reboot."""

    def __init__(self, service: str, *, daemon: Daemon | None = None):
        super().__init__(service, "stopped", daemon=daemon)
        self.name = f"service {service} disabled"

    def check(self, ctx: StepContext) -> str | None:
        todo = [Service.check(self, ctx),
                "disable it at boot" if enabled_at_boot(ctx, self.service) else None]
        return "; ".join(t for t in todo if t) or None

    def change(self, ctx: StepContext) -> None:
        if self.is_running(ctx):
            Service.change(self, ctx)
        if enabled_at_boot(ctx, self.service):
            s = shlex.quote(self.service)
            ctx.run(f"systemctl disable --quiet {s}" if init_system(ctx) == "systemd"
                    else f"update-rc.d {s} disable")

    def verify(self, ctx: StepContext) -> None:
        Service.verify(self, ctx)
        if enabled_at_boot(ctx, self.service):
            raise StepError(f"service {self.service} is still enabled at boot after the change")
