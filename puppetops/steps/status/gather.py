"""What to read on each host, by the roles its inventory groups give it, in one remote call.

Roles come from the groups the lifecycle plans use: ``main`` (Puppet Server, code, the CA,
the webhook, and PuppetDB when the server uses one and no ``puppetdb`` group says where it
is), ``compilers``, ``loadbalancers``, ``puppetdb`` and ``agents``. A host in no such group
is only checked to be reachable.
"""
from __future__ import annotations

from typing import Any, Callable, Sequence

from ...puppet import node, puppetdb
from ...puppet.layout import LAYOUTS, Layout
from ...step import StepContext
from ...target import Target
from . import sections
from .script import Section, host_script, parse

MAIN, COMPILERS, LBS, AGENTS = "main", "compilers", "loadbalancers", "agents"
PUPPETDB = puppetdb.GROUP  # the group the plans install PuppetDB on (steps.puppetdb.host)
ROLE_GROUPS = (MAIN, COMPILERS, LBS, PUPPETDB, AGENTS)

_READS: dict[str, tuple[Callable[[Target, Layout], Section], ...]] = {
    MAIN: (sections.server, sections.code, sections.ca, sections.webhook),
    COMPILERS: (sections.server, sections.code),
    LBS: (sections.lb,),
    PUPPETDB: (sections.puppetdb,),
    AGENTS: (sections.agent,),
}


def roles(target: Target) -> list[str]:
    """The target's roles, in ``ROLE_GROUPS`` order."""
    return [r for r in ROLE_GROUPS if r in target.groups]


def reads(target: Target, role_names: Sequence[str],
          puppetdb_group: bool) -> Callable[[Layout], list[Section]]:
    """The sections of ``target``'s roles for a layout, each once; main also reads PuppetDB
    where the server uses one, when no ``puppetdb`` group names PuppetDB's host."""
    def build(layout: Layout) -> list[Section]:
        made: dict[str, Section] = {}
        for role in role_names:
            for read in _READS[role]:
                section = read(target, layout)
                made.setdefault(section.name, section)
        if MAIN in role_names and not puppetdb_group:
            made.setdefault("puppetdb", sections.puppetdb(target, layout, required=False))
        return list(made.values())
    return build


def reader(puppetdb_group: bool) -> Callable[[StepContext], dict[str, Any]]:
    """A function for ``run.each``: the host's roles and every section's data, read with one
    remote command (``true`` for a host with no role: reachable is all there is to know)."""
    def read(ctx: StepContext) -> dict[str, Any]:
        host_roles = roles(ctx.target)
        found = {"roles": host_roles, "certname": node.certname(ctx.target)}
        if not host_roles:
            ctx.run("true")
            return found
        build = reads(ctx.target, host_roles, puppetdb_group)
        text = ctx.run(host_script(ctx.target, build), check=False).stdout
        # the sections' names and parsers are the same for either layout
        return {**found, **parse(text, build(LAYOUTS["debian"]))}
    return read
