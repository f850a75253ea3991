"""Load-balancer members at run time: which serve, how many sessions they hold, and taking
one out (drain, maintenance) or putting it back (ready) — for HAProxy and nginx alike.

HAProxy has a runtime API: ``show servers state`` gives each server's operational state
(2 = running) and admin flags (maintenance 0x01/0x02/0x04/0x20/0x40, drain 0x08/0x10),
``show stat`` its current sessions (``scur``); ``set server B/S state drain|maint|ready``
changes it without a reload, and the config keeps runtime states across reloads.

Open-source nginx has neither: a member is taken out by adding ``down`` to its server line
and reloading (old workers finish their connections), so it has one level out, reported as
maint, which both drain and maint reach; its sessions are the LB host's established TCP
connections to it, and it is up when it answers /status/v1/simple from the LB host.
``configure_lb`` rewrites the whole config, so it puts drained nginx members back.

Why a member was taken out is kept on the LB host too: see ``out_records``.
"""
from __future__ import annotations

import re
import shlex
from dataclasses import dataclass

from ...errors import StepError
from ...step import StepContext
from .. import puppetserver_control
from . import haproxy, nginx, pool
from .pool import Member

READY, DRAIN, MAINT = "ready", "drain", "maint"
_HAPROXY_MAINT, _HAPROXY_DRAIN = 0x01 | 0x02 | 0x04 | 0x20 | 0x40, 0x08 | 0x10
_HAPROXY_RUNNING = "2"


@dataclass(frozen=True)
class MemberState:
    name: str
    admin: str  # ready, drain or maint (what the operator set)
    up: bool  # passes its health check (HAProxy) / answers from the LB host (nginx)
    sessions: int
    detail: str = ""  # what the LB itself says (HAProxy: status and check, e.g. "UP L7OK")

    @property
    def serving(self) -> bool:
        """Takes new agent connections: set ready and healthy."""
        return self.admin == READY and self.up


# -- HAProxy ---------------------------------------------------------------------------------

def _haproxy_admin(flags: int) -> str:
    return MAINT if flags & _HAPROXY_MAINT else DRAIN if flags & _HAPROXY_DRAIN else READY


def parse_servers_state(text: str) -> dict[str, dict[str, str]]:
    """``show servers state`` rows (format 1) by server name."""
    lines = [line for line in text.splitlines() if line.strip()]
    header = next((line[1:].split() for line in lines if line.startswith("#")), [])
    rows = [dict(zip(header, line.split())) for line in lines
            if not line.startswith("#") and len(line.split()) == len(header)]
    return {r["srv_name"]: r for r in rows if r.get("be_name") == haproxy.BACKEND}


def haproxy_states(ctx: StepContext) -> dict[str, MemberState]:
    state = parse_servers_state(haproxy.runtime(ctx, f"show servers state {haproxy.BACKEND}"))
    stats = haproxy.stat(ctx)
    found = {}
    for name, row in state.items():
        stat = stats.get(name, {})
        found[name] = MemberState(
            name, _haproxy_admin(int(row["srv_admin_state"])),
            row["srv_op_state"] == _HAPROXY_RUNNING,
            int(stat.get("scur") or 0),
            f"{stat.get('status', '?')} {stat.get('check_status', '')}".strip())
    return found


def haproxy_set(ctx: StepContext, member: str, admin: str) -> None:
    reply = haproxy.runtime(ctx, f"set server {haproxy.BACKEND}/{member} state {admin}").strip()
    if reply:
        raise StepError(f"HAProxy refused `set server {member} state {admin}`: {reply}")


# -- nginx -----------------------------------------------------------------------------------

def _nginx_line(member: str) -> re.Pattern[str]:
    return re.compile(rf"^(\s+server \S+ [^;#]*?)( down)?;(\s+# {re.escape(member)})$", re.M)


def nginx_mark(text: str, member: str, down: bool) -> str:
    """The stream config with ``member``'s server line marked ``down`` (or not)."""
    pattern = _nginx_line(member)
    if not pattern.search(text):
        raise StepError(f"{member} is not a member in {nginx.CONFIG}")
    return pattern.sub(lambda m: f"{m.group(1)}{' down' if down else ''};{m.group(3)}", text)


def nginx_states(ctx: StepContext) -> dict[str, MemberState]:
    text = ctx.read(nginx.CONFIG) or ""
    found = {}
    for member in nginx.parse_members(text):
        marked = _nginx_line(member.name).search(text)
        down = bool(marked and marked.group(2))
        found[member.name] = MemberState(
            member.name, MAINT if down else READY,
            puppetserver_control.ready(ctx, member.address, member.port),
            nginx_sessions(ctx, member),
            "down" if down else "")
    return found


def nginx_sessions(ctx: StepContext, member: Member) -> int:
    """Established connections from the LB host to the member's port."""
    host = shlex.quote(member.address)
    out = ctx.run(f"a=$(getent ahostsv4 {host} | awk 'NR==1{{print $1}}'); "
                  f"ss -Htn state established dst \"$a:{member.port}\" | wc -l")
    return int(out.stdout.strip() or 0)


def nginx_set(ctx: StepContext, member: str, admin: str) -> None:
    current = ctx.read(nginx.CONFIG) or ""
    wanted = nginx_mark(current, member, admin != READY)
    if wanted != current:
        ctx.put(wanted, nginx.CONFIG, mode=0o644)
        ctx.run("nginx -t -q && nginx -s reload")


# -- either backend --------------------------------------------------------------------------

def states(ctx: StepContext) -> dict[str, MemberState]:
    """Every member of the LB host's backend, by name."""
    return haproxy_states(ctx) if pool.backend(ctx.target) == "haproxy" else nginx_states(ctx)


def set_admin(ctx: StepContext, member: str, admin: str) -> None:
    """Put ``member`` in ``admin`` state (ready, drain or maint)."""
    if pool.backend(ctx.target) == "haproxy":
        haproxy_set(ctx, member, admin)
    else:
        nginx_set(ctx, member, admin)
