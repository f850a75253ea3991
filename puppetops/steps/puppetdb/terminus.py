"""A Puppet Server's side of PuppetDB: the terminus package, puppetdb.conf, routes.yaml and
puppet.conf, so catalogs, facts and reports are stored in PuppetDB."""
from __future__ import annotations

import yaml

from ...errors import StepError
from ...puppet import node, puppetdb
from ...step import Step, StepContext
from ..files import FileEdit
from ..packages import Packages
from ..puppet_agent import PuppetConf


class TerminusPackage(Packages):
    """The PuppetDB terminus, as the server's layout names it."""

    name = "PuppetDB terminus package"

    def packages(self, ctx: StepContext) -> tuple[str, ...]:
        return (puppetdb.layout_of(node.layout(ctx.target)).terminus_package,)


class PuppetdbConf(FileEdit):
    """puppetdb.conf names the PuppetDB host (by its certname, which its certificate has)."""

    name = "puppetdb.conf"

    def __init__(self, puppetdb_certname: str):
        super().__init__()
        self.puppetdb_certname = puppetdb_certname

    def path(self, ctx: StepContext) -> str:
        return f"{node.layout(ctx.target).confdir}/puppetdb.conf"

    def edit(self, ctx: StepContext, current: str | None) -> str:
        return puppetdb.puppetdb_conf(current, self.puppetdb_certname)


class Routes(FileEdit):
    """routes.yaml stores the server's facts in PuppetDB."""

    name = "routes.yaml"

    def path(self, ctx: StepContext) -> str:
        return f"{node.layout(ctx.target).confdir}/routes.yaml"

    def edit(self, ctx: StepContext, current: str | None) -> str:
        try:
            return puppetdb.routes_yaml(current)
        except (ValueError, yaml.YAMLError) as exc:  # the operator's file, unreadable
            raise StepError(f"{self.path(ctx)}: {exc}; fix or remove it") from None


def terminus_steps(puppetdb_certname: str) -> list[Step]:
    """What a Puppet Server needs to store in PuppetDB at ``puppetdb_certname``; the server
    must then reload (``puppetserver.PuppetserverRefresh``) if any of them changed."""
    return [TerminusPackage(), PuppetdbConf(puppetdb_certname), Routes(),
            PuppetConf(lambda target: {"server": dict(puppetdb.SERVER_SETTINGS)})]
