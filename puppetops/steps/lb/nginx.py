"""nginx (stream module) as the alternative load balancer: TCP on 8140, least connections.

Open-source nginx has only passive health checks (``max_fails``/``fail_timeout``) and no
runtime API, so membership changes are config edits plus ``nginx -s reload`` (old workers
finish their connections), and "the member is up" is checked from the LB host itself: the
compiler answers ``/status/v1/simple`` there, and so does the LB's own port.

Our stream block lives in its own file, included from the top level of nginx.conf (a
``stream {}`` cannot sit inside ``http {}``); Debian's libnginx-mod-stream loads the module.
"""
from __future__ import annotations

import re
from typing import Mapping

from ...errors import StepError
from ...step import Step, StepContext
from .. import puppetserver_control
from ..files import FileLine
from ..services import Service
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


def current_members(ctx: StepContext) -> list[Member]:
    return parse_members(ctx.read(CONFIG))


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
        for _ in range(30):
            if self.check(ctx) is None:
                return
            ctx.run("sleep 2")
        raise StepError(f"still down after 60s: {self.check(ctx)}")

