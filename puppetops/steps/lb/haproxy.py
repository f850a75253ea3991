"""HAProxy as the compilers' load balancer: TCP on 8140, HTTP health checks, runtime API.

The config (owned whole by puppetops) balances TCP connections (leastconn) and checks each
compiler with ``GET /status/v1/simple`` over TLS (``check-ssl verify none``: the check only
needs the word "running"). The admin socket is on (/run/haproxy/admin.sock, mode 660, level
admin — never on TCP), and runtime server states are saved to a server-state file before
every reload and loaded from it after, so a compiler put in maintenance stays there.

At run time the API gives each member's state: ``show servers state`` its operational state
(2 = running) and admin flags (maintenance 0x01/0x02/0x04/0x20/0x40, drain 0x08/0x10),
``show stat`` its current sessions (``scur``); ``set server B/S state drain|maint|ready``
changes it without a reload, and the config keeps runtime states across reloads.
"""
from __future__ import annotations

import csv
import io
import re
import shlex
from typing import Mapping

from ...errors import StepError
from ...polling import wait_while
from ...step import Step, StepContext
from ..services import Service, init_system
from .backend import DRAIN, MAINT, READY, Backend, MemberState
from .pool import PORT, Member

CONFIG = "/etc/haproxy/haproxy.cfg"
SOCKET = "/run/haproxy/admin.sock"
STATE_FILE = "/var/lib/haproxy/server-state"
BACKEND = "puppet_compilers"
PACKAGES = ("haproxy", "socat")
UP_TIMEOUT = 120.0
_ADMIN_MAINT, _ADMIN_DRAIN = 0x01 | 0x02 | 0x04 | 0x20 | 0x40, 0x08 | 0x10
_RUNNING = "2"


def render(members: list[Member]) -> str:
    servers = [f"    server {m.name} {m.address}:{m.port}" for m in sorted(members)]
    return "\n".join([
        "# managed by puppetops (configure_lb, add_compiler): edits here are overwritten",
        "global",
        f"    stats socket {SOCKET} mode 660 level admin",
        "    stats timeout 30s",
        f"    server-state-file {STATE_FILE}",
        "    user haproxy",
        "    group haproxy",
        "    daemon",
        "",
        "defaults",
        "    mode tcp",
        "    timeout connect 5s",
        "    timeout client 10m",
        "    timeout server 10m",
        "    load-server-state-from-file global",
        "",
        "frontend puppet",
        f"    bind :{PORT}",
        f"    default_backend {BACKEND}",
        "",
        f"backend {BACKEND}",
        "    balance leastconn",
        "    option httpchk GET /status/v1/simple",
        "    http-check expect string running",
        "    default-server check check-ssl verify none inter 2s fall 3 rise 2",
        *servers,
    ]) + "\n"


def parse_members(text: str | None) -> list[Member]:
    """The members of our backend in a config ``render`` wrote."""
    found, inside = [], False
    for line in (text or "").splitlines():
        if re.match(r"^\S", line):
            inside = line.split() == ["backend", BACKEND]
        m = re.match(r"^\s+server\s+(\S+)\s+(\S+):(\d+)", line) if inside else None
        if m:
            found.append(Member(m.group(1), m.group(2), int(m.group(3))))
    return found


def runtime_command(command: str) -> str:
    """The shell command that sends ``command`` to the admin socket (socat on the LB host)."""
    return f"echo {shlex.quote(command)} | socat -t 5 stdio unix-connect:{SOCKET}"


def runtime(ctx: StepContext, command: str) -> str:
    """One command on the admin socket."""
    return ctx.run(runtime_command(command)).stdout


def stat(ctx: StepContext) -> dict[str, dict[str, str]]:
    """``show stat`` rows of our backend's servers, by server name (status, check_status...)."""
    return parse_stat(runtime(ctx, "show stat"))


def parse_stat(text: str) -> dict[str, dict[str, str]]:
    """The rows of ``show stat`` output that are our backend's servers, by server name."""
    rows = csv.DictReader(io.StringIO(text.lstrip("# ")))
    return {r["svname"]: r for r in rows
            if r.get("pxname") == BACKEND and r.get("svname") not in ("BACKEND", "FRONTEND")}


def _service(ctx: StepContext, action: str) -> str:
    if init_system(ctx) == "systemd":
        return f"systemctl {action} haproxy"
    return f"/etc/init.d/haproxy {action}"


class HaproxyConfig(Step):
    """haproxy.cfg balances exactly ``members[lb]``; a changed config is validated before it
    replaces the old one, and a running HAProxy reloads (states saved first)."""

    name = "haproxy config"

    def __init__(self, members: Mapping[str, list[Member]]):
        super().__init__()
        self.members = members

    def _wanted(self, ctx: StepContext) -> str:
        return render(self.members[ctx.target.name])

    def check(self, ctx: StepContext) -> str | None:
        text, wanted = ctx.read(CONFIG), self.members[ctx.target.name]
        if text == self._wanted(ctx):
            return None
        current = parse_members(text)
        added = sorted(m.name for m in set(wanted) - set(current))
        removed = sorted(m.name for m in set(current) - set(wanted))
        what = "; ".join(filter(None, [added and f"add {', '.join(added)}",
                                       removed and f"remove {', '.join(removed)}"]))
        return f"write {CONFIG}" + (f" ({what})" if what else "")

    def change(self, ctx: StepContext) -> None:
        staged = f"{CONFIG}.puppetops-new"
        ctx.put(self._wanted(ctx), staged, mode=0o644)
        out = ctx.run(f"haproxy -c -f {staged}", check=False)
        if not out.ok:
            ctx.run(f"rm -f {staged}")
            raise StepError(f"haproxy rejects the new config: {(out.stderr or out.stdout).strip()}")
        ctx.run(f"mv -f {staged} {CONFIG}")
        if Service("haproxy").is_running(ctx):
            ctx.run(f"mkdir -p /run/haproxy {shlex.quote(STATE_FILE.rsplit('/', 1)[0])} && "
                    f"echo 'show servers state' | socat -t 5 stdio unix-connect:{SOCKET} "
                    f"> {STATE_FILE} && {_service(ctx, 'reload')}")


class HaproxyMembersUp(Step):
    """HAProxy sees each of ``names[lb]`` UP, its health check passing (L7OK). A member an
    operator put in maintenance or drain is made ready again (the runtime API, no reload)."""

    name = "haproxy members up"
    timeout = UP_TIMEOUT + 30

    def __init__(self, names: Mapping[str, list[str]], timeout: float = UP_TIMEOUT):
        super().__init__()
        self.names, self.wait = names, timeout

    def _down(self, ctx: StepContext) -> dict[str, str]:
        if not ctx.test(f"[ -S {SOCKET} ]"):  # not started yet (noop on a new LB)
            return {name: "haproxy not running" for name in self.names[ctx.target.name]}
        rows = stat(ctx)
        down = {}
        for name in self.names[ctx.target.name]:
            row = rows.get(name)
            if row is None:
                down[name] = "not configured"
            elif row.get("status") != "UP" or not row.get("check_status", "").startswith("L7OK"):
                down[name] = f"{row.get('status')} {row.get('check_status')}".strip()
        return down

    def check(self, ctx: StepContext) -> str | None:
        down = self._down(ctx)
        return None if not down else "bring up " + ", ".join(f"{n} ({s})" for n, s in down.items())

    def change(self, ctx: StepContext) -> None:
        for name, state in self._down(ctx).items():
            if state.startswith(("MAINT", "DRAIN")):
                runtime(ctx, f"set server {BACKEND}/{name} state ready")

    def verify(self, ctx: StepContext) -> None:
        down = wait_while(lambda: self._down(ctx), self.wait, 1, sleep=ctx.sleep)
        if down:
            raise StepError(f"not UP after {self.wait:.0f}s: "
                            + ", ".join(f"{n} ({s})" for n, s in down.items()))


def admin_state(flags: int) -> str:
    """ready, drain or maint from a server's admin flags (``srv_admin_state``)."""
    return MAINT if flags & _ADMIN_MAINT else DRAIN if flags & _ADMIN_DRAIN else READY


def parse_servers_state(text: str) -> dict[str, dict[str, str]]:
    """``show servers state`` rows (format 1) of our backend, by server name."""
    lines = [line for line in text.splitlines() if line.strip()]
    header = next((line[1:].split() for line in lines if line.startswith("#")), [])
    rows = [dict(zip(header, line.split())) for line in lines
            if not line.startswith("#") and len(line.split()) == len(header)]
    return {r["srv_name"]: r for r in rows if r.get("be_name") == BACKEND}


class HAProxy(Backend):
    """HAProxy: active health checks and a runtime API (the default backend)."""

    name, packages, service = "haproxy", PACKAGES, "haproxy"

    def config(self, members: Mapping[str, list[Member]]) -> Step:
        return HaproxyConfig(members)

    def members_up(self, up: Mapping[str, list[Member]]) -> Step:
        return HaproxyMembersUp({lb: [m.name for m in ms] for lb, ms in up.items()})

    def current_members(self, ctx: StepContext) -> list[Member]:
        return parse_members(ctx.read(CONFIG))

    def balancing(self, ctx: StepContext) -> bool:
        return ctx.test(f"[ -S {SOCKET} ]")

    def states(self, ctx: StepContext) -> dict[str, MemberState]:
        return _member_states(runtime(ctx, f"show servers state {BACKEND}"),
                              runtime(ctx, "show stat"))

    def states_script(self) -> str:
        return (f"{runtime_command(f'show servers state {BACKEND}')} && echo {_STAT_BEGINS} && "
                f"{runtime_command('show stat')}")

    def parse_states(self, text: str) -> dict[str, MemberState]:
        servers, begins, stats = text.partition(f"{_STAT_BEGINS}\n")
        if not begins or not servers.lstrip().startswith("1"):  # format version 1 comes first
            raise StepError(f"HAProxy's admin socket {SOCKET} did not answer: "
                            f"{text.strip()[:200] or 'no output'}")
        return _member_states(servers, stats)

    def set_admin(self, ctx: StepContext, member: str, admin: str) -> None:
        reply = runtime(ctx, f"set server {BACKEND}/{member} state {admin}").strip()
        if reply:
            raise StepError(f"HAProxy refused `set server {member} state {admin}`: {reply}")


_STAT_BEGINS = "@@puppetops-haproxy-show-stat"


def _member_states(servers_state: str, show_stat: str) -> dict[str, MemberState]:
    """Every member's state from ``show servers state`` and ``show stat`` output."""
    state, stats = parse_servers_state(servers_state), parse_stat(show_stat)
    found = {}
    for name, row in state.items():
        seen = stats.get(name, {})
        found[name] = MemberState(
            name, admin_state(int(row["srv_admin_state"])), row["srv_op_state"] == _RUNNING,
            int(seen.get("scur") or 0),
            f"{seen.get('status', '?')} {seen.get('check_status', '')}".strip())
    return found
