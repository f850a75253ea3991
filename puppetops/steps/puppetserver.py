"""Puppet Server on one host: its packages, JVM options, admin API access, running, reloaded,
ready."""
from __future__ import annotations

from typing import TYPE_CHECKING

from ..errors import StepError
from ..puppet import conf, node
from ..step import Step, StepContext
from ..target import Target
from . import puppetserver_control
from .files import FileEdit
from .services import enabled_at_boot

if TYPE_CHECKING:
    from ..flow import Cohort

# What every Puppet Server host installs, main and compilers alike: the server, git for the
# control repo its deployer fetches, curl for the CA and admin APIs, openssl for keys and CSRs.
SERVER_PACKAGES = ("puppetserver", "git", "curl", "openssl")
ADMIN_RULE = "environment-cache"
ADMIN_PATH = "/puppet-admin-api/v1/environment-cache"


class ServerJavaArgs(FileEdit):
    """JAVA_ARGS in the server's defaults file carries the inventory's
    ``puppetserver_java_args`` (e.g. a smaller heap); without the var, nothing is managed."""

    name = "puppetserver JAVA_ARGS"

    def path(self, ctx: StepContext) -> str:
        return node.layout(ctx.target).server_defaults

    def check(self, ctx: StepContext) -> str | None:
        return super().check(ctx) if node.java_args(ctx.target) else None

    def edit(self, ctx: StepContext, current: str | None) -> str:
        return conf.server_defaults(current, node.java_args(ctx.target) or "")


class AdminApiAccess(FileEdit):
    """auth.conf lets the server itself and main (by certname, never ``*``) flush the
    environment cache after a code deploy; Debian's auth.conf has no such rule, so its
    "deny all" answers 403 (lab P9)."""

    name = "admin API access"

    def __init__(self, main: Target):
        super().__init__()
        self.main = main

    def path(self, ctx: StepContext) -> str:
        return node.layout(ctx.target).auth_conf

    def edit(self, ctx: StepContext, current: str | None) -> str:
        allow = sorted({node.certname(ctx.target), node.certname(self.main)})
        rule = conf.auth_rule(f"puppetops {ADMIN_RULE}", ADMIN_PATH, ["delete"], allow)
        return conf.auth_conf(current, ADMIN_RULE, rule)


class PuppetserverRunning(Step):
    """Puppet Server runs and is ready (``/status/v1/simple`` = running), and under systemd
    starts at boot too (remove_compiler disables it; add_compiler brings the host back)."""

    name = "puppetserver running"
    timeout = puppetserver_control.START_TIMEOUT + 60.0

    @staticmethod
    def _disabled(ctx: StepContext) -> bool:
        return puppetserver_control.control(ctx) == "systemd" and \
            not enabled_at_boot(ctx, puppetserver_control.SERVICE)

    def check(self, ctx: StepContext) -> str | None:
        if self._disabled(ctx):
            return "enable puppetserver at boot"
        if not puppetserver_control.running(ctx, node.layout(ctx.target)):
            return "start puppetserver"
        if not puppetserver_control.ready(ctx, node.certname(ctx.target)):
            return "wait for puppetserver to be ready"
        return None

    def change(self, ctx: StepContext) -> None:
        layout = node.layout(ctx.target)
        if self._disabled(ctx):
            ctx.run(f"systemctl enable --quiet {puppetserver_control.SERVICE}")
        if not puppetserver_control.running(ctx, layout):
            puppetserver_control.start(ctx, layout)

    def verify(self, ctx: StepContext) -> None:
        puppetserver_control.wait_ready(ctx, node.layout(ctx.target), node.certname(ctx.target))


class PuppetserverRefresh(Step):
    """A running server picks up changed config: a reload (the unit's ExecReload), or a
    restart when ``restart`` (JAVA_ARGS only take effect in a new JVM). Meant for the
    targets whose config just changed; a stopped server loads it when it starts."""

    timeout = puppetserver_control.START_TIMEOUT + 120.0

    def __init__(self, restart: bool = False):
        super().__init__()
        self.restart = restart
        self.name = f"puppetserver {'restart' if restart else 'reload'}"

    def check(self, ctx: StepContext) -> str | None:
        if not puppetserver_control.running(ctx, node.layout(ctx.target)):
            return None
        return f"{'restart' if self.restart else 'reload'} puppetserver to apply the changes"

    def change(self, ctx: StepContext) -> None:
        layout = node.layout(ctx.target)
        if self.restart:
            puppetserver_control.stop(ctx, layout)
            puppetserver_control.start(ctx, layout)
        else:
            puppetserver_control.reload(ctx, layout)

    def verify(self, ctx: StepContext) -> None:
        puppetserver_control.wait_ready(ctx, node.layout(ctx.target), node.certname(ctx.target))


def require_ready(ctx: StepContext) -> None:
    """For plans that need main up (signing): fail with a clear message if it is not."""
    if not puppetserver_control.ready(ctx, node.certname(ctx.target)):
        raise StepError(f"Puppet Server on {ctx.target.name} is not running "
                        "(run bootstrap_ca first)")


def start_servers(cohort: "Cohort", changed: set[str], restart: set[str]) -> None:
    """Every live server runs and is ready; those whose config changed (``changed``) reload
    first if they were running, and those whose JVM options changed (``restart``) restart."""
    cohort.step(PuppetserverRefresh(restart=True),
                only=[t for t in cohort.live if t.name in restart])
    cohort.step(PuppetserverRefresh(),
                only=[t for t in cohort.live if t.name in changed - restart])
    cohort.step(PuppetserverRunning())
