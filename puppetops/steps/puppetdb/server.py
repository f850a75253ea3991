"""PuppetDB on its host: packages, JVM options, TLS with the host's Puppet certificate, the
certificate allow-list, running and healthy."""
from __future__ import annotations

import shlex
from typing import Iterable

from ...errors import StepError
from ...polling import wait_until
from ...puppet import conf, node, puppetdb
from ...step import Step, StepContext
from ..files import FileEdit
from ..packages import Packages
from . import control

# Debian's puppetdb asks dbconfig-common to make its database on install; we make it ourselves
# (database.DatabaseRole), with a password nothing else keeps a copy of.
DEBCONF = "puppetdb puppetdb/dbconfig-install boolean false"


class PuppetdbPackages(Packages):
    """PuppetDB and PostgreSQL, as the host's layout names them; on Debian, dbconfig-common
    is told first not to set up the database."""

    name = "PuppetDB packages"

    def packages(self, ctx: StepContext) -> tuple[str, ...]:
        return puppetdb.layout_of(node.layout(ctx.target)).packages

    def change(self, ctx: StepContext) -> None:
        if ctx.test("command -v debconf-set-selections >/dev/null"):
            ctx.run("debconf-set-selections", stdin=DEBCONF + "\n")
        super().change(ctx)


class PuppetdbJavaArgs(FileEdit):
    """JAVA_ARGS in PuppetDB's defaults file carries the inventory's ``puppetdb_java_args``
    (a smaller heap in the lab); without the var, nothing is managed."""

    name = "PuppetDB JAVA_ARGS"

    def path(self, ctx: StepContext) -> str:
        return puppetdb.layout_of(node.layout(ctx.target)).defaults

    def check(self, ctx: StepContext) -> str | None:
        return super().check(ctx) if node.puppetdb_java_args(ctx.target) else None

    def edit(self, ctx: StepContext, current: str | None) -> str:
        return conf.server_defaults(current, node.puppetdb_java_args(ctx.target) or "")


class HostCertificate(Step):
    """The host has its Puppet key and certificate signed by the CA (PuppetDB serves with
    them): main always has; another PuppetDB host must be enrolled first. No step here makes
    them: a real run stops at this step; a noop one says the run needs them (an earlier
    step of the same plan, bootstrap_ca's, would have made them)."""

    name = "Puppet certificate"

    def check(self, ctx: StepContext) -> str | None:
        layout, name = node.layout(ctx.target), node.certname(ctx.target)
        ssl = puppetdb.host_ssl(layout, name)
        present = ctx.test(" && ".join(f"[ -s {shlex.quote(f)} ]"
                                       for f in (ssl.key, ssl.cert, ssl.ca)))
        return None if present else f"need the certificate of {name} ({ssl.cert})"

    def change(self, ctx: StepContext) -> None:
        ssl = puppetdb.host_ssl(node.layout(ctx.target), node.certname(ctx.target))
        raise StepError(f"{ctx.target.name} has no Puppet certificate ({ssl.cert}): PuppetDB "
                        "serves with it; run enroll_agent on it first (main gets one from "
                        "bootstrap_ca)")


class SslAccess(Step):
    """PuppetDB can read the host's certificate and key as its package expects: Debian's
    (``puppetdb ssl-setup``) puts user puppetdb in group puppet and points at the ssldir; the
    AIO one copies them into PuppetDB's ssl directory, key mode 0600."""

    name = "PuppetDB TLS files"

    def _copies(self, ctx: StepContext) -> list[tuple[str, str, str]]:
        layout, name = node.layout(ctx.target), node.certname(ctx.target)
        source, dest = puppetdb.host_ssl(layout, name), puppetdb.jetty_ssl(layout, name)
        return [(source.key, dest.key, "600"), (source.cert, dest.cert, "644"),
                (source.ca, dest.ca, "644")]

    def check(self, ctx: StepContext) -> str | None:
        pdb = puppetdb.layout_of(node.layout(ctx.target))
        if not pdb.ssl_copied:
            groups = ctx.run(f"id -nG {shlex.quote(pdb.user)}").stdout.split()
            return None if "puppet" in groups else f"add user {pdb.user} to group puppet"
        stale = [dest for src, dest, mode in self._copies(ctx) if not ctx.test(
            f"cmp -s {shlex.quote(src)} {shlex.quote(dest)} && "
            f"[ \"$(stat -c '%a %U' {shlex.quote(dest)})\" = '{mode} {pdb.user}' ]")]
        return f"copy {', '.join(stale)} from the ssldir" if stale else None

    def change(self, ctx: StepContext) -> None:
        pdb = puppetdb.layout_of(node.layout(ctx.target))
        u = shlex.quote(pdb.user)
        if not pdb.ssl_copied:
            ctx.run(f"usermod -a -G puppet {u}")
            return
        ctx.run(f"install -d -o {u} -g {u} -m 700 {shlex.quote(pdb.ssl_dir)}")
        for src, dest, mode in self._copies(ctx):
            ctx.run(f"install -o {u} -g {u} -m {mode} {shlex.quote(src)} {shlex.quote(dest)}")


class JettyConfig(FileEdit):
    """jetty.ini: HTTPS on 8081 with the host's Puppet certificate."""

    name = "PuppetDB jetty.ini"

    def path(self, ctx: StepContext) -> str:
        return puppetdb.layout_of(node.layout(ctx.target)).jetty_ini

    def edit(self, ctx: StepContext, current: str | None) -> str:
        layout = node.layout(ctx.target)
        return puppetdb.jetty_ini(current, puppetdb.jetty_ssl(layout, node.certname(ctx.target)))


class AllowlistSetting(FileEdit):
    """conf.d/puppetdb.ini turns the certificate allow-list on."""

    name = "PuppetDB allow-list setting"

    def path(self, ctx: StepContext) -> str:
        return puppetdb.layout_of(node.layout(ctx.target)).puppetdb_ini

    def edit(self, ctx: StepContext, current: str | None) -> str:
        return puppetdb.puppetdb_ini(current, puppetdb.layout_of(node.layout(ctx.target)))


class Allowlist(FileEdit):
    """The certnames in ``add`` may use PuppetDB's API and those in ``remove`` may not; names
    the operator added stay."""

    name = "PuppetDB certificate allow-list"

    def __init__(self, add: Iterable[str] = (), remove: Iterable[str] = ()):
        super().__init__()
        self.add, self.remove = tuple(add), tuple(remove)

    def path(self, ctx: StepContext) -> str:
        return puppetdb.layout_of(node.layout(ctx.target)).allowlist

    def edit(self, ctx: StepContext, current: str | None) -> str:
        return puppetdb.allowlist(current, self.add, self.remove)


def installed(ctx: StepContext) -> bool:
    """Whether install_puppetdb has set PuppetDB up on this host (its allow-list is on)."""
    pdb = puppetdb.layout_of(node.layout(ctx.target))
    return ctx.test(f"[ -f {shlex.quote(pdb.allowlist)} ] && "
                    f"grep -q certificate-allowlist {shlex.quote(pdb.puppetdb_ini)}")


class PuppetdbStarted(Step):
    """The PuppetDB process runs (started if not; not waiting for it to answer): its start
    takes a minute or more, which other work can overlap (``PuppetdbRunning`` waits)."""

    name = "puppetdb started"

    def check(self, ctx: StepContext) -> str | None:
        return None if control.running(ctx, node.layout(ctx.target)) else "start puppetdb"

    def change(self, ctx: StepContext) -> None:
        control.start(ctx, node.layout(ctx.target))

    def verify(self, ctx: StepContext) -> None:
        """systemd may take a moment to have the unit active."""
        layout = node.layout(ctx.target)
        if not wait_until(lambda: control.running(ctx, layout), bool, 5, 0.1, sleep=ctx.sleep):
            raise StepError("puppetdb is not running after its start")


class PuppetdbRunning(Step):
    """PuppetDB runs and answers ``running`` on 8081 to the host's own certificate."""

    name = "puppetdb running"
    timeout = control.START_TIMEOUT + 60.0

    def check(self, ctx: StepContext) -> str | None:
        layout = node.layout(ctx.target)
        if not control.running(ctx, layout):
            return "start puppetdb"
        if not control.healthy(ctx, layout, node.certname(ctx.target)):
            return "wait for puppetdb to be healthy"
        return None

    def change(self, ctx: StepContext) -> None:
        layout = node.layout(ctx.target)
        if not control.running(ctx, layout):
            control.start(ctx, layout)

    def verify(self, ctx: StepContext) -> None:
        control.wait_ready(ctx, node.layout(ctx.target), node.certname(ctx.target))


class PuppetdbRestarted(Step):
    """A running PuppetDB restarts to load changed config; a stopped one loads it when it
    starts. Never a reload: SIGHUP (the unit's ExecReload) kills Debian's PuppetDB 7.12.1
    (docs/puppet-pitfalls.md, PuppetDB)."""

    name = "puppetdb restarted"
    timeout = control.START_TIMEOUT + 120.0

    def check(self, ctx: StepContext) -> str | None:
        if not control.running(ctx, node.layout(ctx.target)):
            return None
        return "restart puppetdb to apply the changes"

    def change(self, ctx: StepContext) -> None:
        layout = node.layout(ctx.target)
        control.stop(ctx, layout)
        control.start(ctx, layout)

    def verify(self, ctx: StepContext) -> None:
        control.wait_ready(ctx, node.layout(ctx.target), node.certname(ctx.target))
