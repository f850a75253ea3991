"""nginx (stream module) as the alternative load balancer: TCP on 8140, least connections.

Open-source nginx has only passive health checks (``max_fails``/``fail_timeout``) and no
runtime API, so membership changes are config edits plus ``nginx -s reload`` (old workers
finish their connections), and "the member is up" is checked from the LB host itself: the
compiler answers ``/status/v1/simple`` there, and so does the LB's own port.

Our stream block lives in its own file, included from the top level of nginx.conf (a
``stream {}`` cannot sit inside ``http {}``); Debian's libnginx-mod-stream loads the module.

At run time a member is taken out by adding ``down`` to its server line and reloading (old
workers finish their connections), so it has one level out, reported as maint, which both
drain and maint reach; its sessions are the LB host's established TCP connections to it, and
it is up when it answers /status/v1/simple from the LB host. ``configure_lb`` rewrites the
whole config, so it puts drained nginx members back.
"""
from __future__ import annotations

import re
from typing import Mapping

from ...errors import StepError
from ...polling import wait_while
from ...step import Step, StepContext
from .. import puppetserver_control
from ..files import FileLine
from ..services import Service
from .backend import MAINT, READY, Backend, MemberState
from .pool import PORT, Member

MAIN_CONFIG = "/etc/nginx/nginx.conf"
CONFIG = "/etc/nginx/puppetops-stream.conf"
UPSTREAM = "puppet_compilers"
PACKAGES = ("nginx", "libnginx-mod-stream")


def render(members: list[Member]) -> str:
    servers = [f"        server {m.address}:{m.port} max_fails=3 fail_timeout=30s;  # {m.name}"
               for m in sorted(members)]
    return "\n".join([
        "# managed by puppetops (configure_lb, add_compiler): edits here are overwritten",
        "stream {",
        f"    upstream {UPSTREAM} {{",
        "        least_conn;",
        *servers,
        "    }",
        "    server {",
        f"        listen {PORT};",
        f"        proxy_pass {UPSTREAM};",
        "    }",
        "}",
    ]) + "\n"


def parse_members(text: str | None) -> list[Member]:
    return [Member(m.group(3), m.group(1), int(m.group(2)))
            for m in re.finditer(r"^\s+server (\S+):(\d+) .*# (\S+)$", text or "", re.M)]


def include_line() -> FileLine:
    """nginx.conf includes our stream file at its top level (appended after ``http {}``)."""
    return FileLine(MAIN_CONFIG, f"include {CONFIG};")


class NginxConfig(Step):
    """The stream config balances exactly ``members[lb]`` and nginx.conf includes it; a new
    config is checked on its own (``nginx -t`` on a scratch main config) before it replaces
    the old one, then a running nginx reloads."""

    name = "nginx config"

    def __init__(self, members: Mapping[str, list[Member]]):
        super().__init__()
        self.members = members

    def check(self, ctx: StepContext) -> str | None:
        wanted = [m.name for m in self.members[ctx.target.name]]
        if ctx.read(CONFIG) != render(self.members[ctx.target.name]):
            return f"write {CONFIG} ({', '.join(wanted)})"
        return include_line().check(ctx)

    def change(self, ctx: StepContext) -> None:
        staged, scratch = f"{CONFIG}.puppetops-new", f"{CONFIG}.puppetops-test"
        ctx.put(render(self.members[ctx.target.name]), staged, mode=0o644)
        ctx.put(f"include /etc/nginx/modules-enabled/*.conf;\nevents {{}}\ninclude {staged};\n",
                scratch, mode=0o644)
        out = ctx.run(f"nginx -t -q -c {scratch}", check=False)
        ctx.run(f"rm -f {scratch}")
        if not out.ok:
            ctx.run(f"rm -f {staged}")
            raise StepError(f"nginx rejects the new config: {(out.stderr or out.stdout).strip()}")
        ctx.run(f"mv -f {staged} {CONFIG}")
        include = include_line()
        if include.check(ctx):
            include.change(ctx)
        ctx.run("nginx -t -q")
        if Service("nginx").is_running(ctx):
            ctx.run("nginx -s reload")


UP_TIMEOUT, UP_POLL = 60.0, 2.0  # seconds NginxMembersUp waits for its members, and between looks


class NginxMembersUp(Step):
    """From the LB host, each of ``members[lb]`` answers /status/v1/simple = running, and so
    does the LB's own port (nginx has no runtime view of its upstreams)."""

    name = "nginx members up"

    def __init__(self, members: Mapping[str, list[Member]]):
        super().__init__()
        self.members = members

    def check(self, ctx: StepContext) -> str | None:
        down = [m.name for m in self.members[ctx.target.name]
                if not puppetserver_control.ready(ctx, m.address, m.port)]
        if not puppetserver_control.ready(ctx, "127.0.0.1", PORT):
            down.append(f"the LB itself (127.0.0.1:{PORT})")
        return None if not down else f"wait for {', '.join(down)}"

    def change(self, ctx: StepContext) -> None:
        """Nothing to do: nginx sends traffic to every configured member that answers."""

    def verify(self, ctx: StepContext) -> None:
        down = wait_while(lambda: self.check(ctx), UP_TIMEOUT, UP_POLL, sleep=ctx.sleep)
        if down:
            raise StepError(f"still down after {UP_TIMEOUT:g}s: {down}")


_PROBES_BEGIN = "@@puppetops-nginx-members"


def _server_line(member: str) -> re.Pattern[str]:
    return re.compile(rf"^(\s+server \S+ [^;#]*?)( down)?;(\s+# {re.escape(member)})$", re.M)


def mark(text: str, member: str, down: bool) -> str:
    """The stream config with ``member``'s server line marked ``down`` (or not)."""
    pattern = _server_line(member)
    if not pattern.search(text):
        raise StepError(f"{member} is not a member in {CONFIG}")
    return pattern.sub(lambda m: f"{m.group(1)}{' down' if down else ''};{m.group(3)}", text)


def without(text: str, names: list[str]) -> str:
    """The stream config without the server lines of ``names``; every other line (the other
    members' ``down`` flags included) as it was."""
    return "".join(line for line in text.splitlines(keepends=True)
                   if not any(_server_line(n).match(line.rstrip("\n")) for n in names))


class Nginx(Backend):
    """nginx's stream module: passive health checks only, no runtime API."""

    name, packages, service = "nginx", PACKAGES, "nginx"

    def config(self, members: Mapping[str, list[Member]]) -> Step:
        return NginxConfig(members)

    def members_up(self, up: Mapping[str, list[Member]]) -> Step:
        return NginxMembersUp(up)

    def current_members(self, ctx: StepContext) -> list[Member]:
        return parse_members(ctx.read(CONFIG))

    def balancing(self, ctx: StepContext) -> bool:
        return ctx.read(CONFIG) is not None

    def states(self, ctx: StepContext) -> dict[str, MemberState]:
        return self.parse_states(ctx.run(self.states_script()).stdout)

    def states_script(self) -> str:
        """The config, then per member ``NAME ANSWER SESSIONS``: what /status/v1/simple
        answers from the LB host and its established connections there."""
        each = ("r=$(curl -sk --max-time 5 \"https://$a:$p/status/v1/simple\"); "
                "ip=$(getent ahostsv4 \"$a\" | awk 'NR==1{print $1}'); "
                "s=$(ss -Htn state established dst \"$ip:$p\" | wc -l); "
                'echo "$n ${r:-none} $s"')
        return (f"cat {CONFIG} && echo {_PROBES_BEGIN} && "
                rf"sed -n 's/^\s*server \(\S*\):\([0-9]*\) .*# \(\S*\)$/\3 \1 \2/p' {CONFIG} | "
                f"while read -r n a p; do {each}; done")

    def parse_states(self, text: str) -> dict[str, MemberState]:
        config, begins, probes = text.partition(f"{_PROBES_BEGIN}\n")
        if not begins:
            raise StepError(f"cannot read {CONFIG}: {text.strip()[:200] or 'no output'}")
        seen = {}
        for line in probes.splitlines():
            fields = line.split()
            if len(fields) == 3 and fields[2].isdigit():
                seen[fields[0]] = (fields[1] == "running", int(fields[2]))
        found = {}
        for member in parse_members(config):
            marked = _server_line(member.name).search(config)
            down = bool(marked and marked.group(2))
            up, sessions_ = seen.get(member.name, (False, 0))
            found[member.name] = MemberState(member.name, MAINT if down else READY, up,
                                             sessions_, "down" if down else "")
        return found

    def set_admin(self, ctx: StepContext, member: str, admin: str) -> None:
        current = ctx.read(CONFIG) or ""
        _write(ctx, current, mark(current, member, admin != READY))

    def remove(self, ctx: StepContext, names: list[str]) -> None:
        """Our config rewritten whole would put members marked down back in: only the
        removed members' lines go."""
        current = ctx.read(CONFIG) or ""
        _write(ctx, current, without(current, names))


def _write(ctx: StepContext, current: str, wanted: str) -> None:
    """The stream config edited at run time, checked, and nginx reloaded (old workers finish
    their connections)."""
    if wanted != current:
        ctx.put(wanted, CONFIG, mode=0o644)
        ctx.run("nginx -t -q && nginx -s reload")
