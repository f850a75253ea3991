"""Second pass: resolve string entries and aliases, check name clashes, merge data into Targets.

Precedence follows Bolt's Group#group_collect/target_collect, which fold the group tree per
target: a child beats its parent, the first listed sibling branch beats later ones, and data on
the target itself beats all group data (with the same tree order between its definitions).
That tree fold equals a plain fold over the target's groups sorted by one global rank (pre-order
with children reversed, see ``_precedence``), so each target costs O(its groups) instead of a
walk over the whole tree.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

from ..target import Target
from .diagnostics import Diagnostics
from .merge import merge, plain
from .parse import Data, GroupDef, ParsedInventory, TargetDef, TargetRef
from .uri import TargetUri, UriError, parse_uri

log = logging.getLogger(__name__)


@dataclass
class Resolved:
    """The resolved inventory and the lookup tables that selection needs."""

    targets: list[Target]               # definition order
    by_name: dict[str, Target]
    aliases: dict[str, Target]
    members: dict[str, list[Target]]    # group name -> its targets, nested groups included
    all_data: Data                      # the top level's own data, for ad-hoc targets


def resolve(parsed: ParsedInventory, diag: Diagnostics) -> Resolved:
    defs = _definitions(parsed)
    alias_of = _aliases(defs, diag)
    direct, first_line, implicit = _membership(parsed, defs, alias_of, diag)
    _check_group_clashes(parsed, first_line, alias_of, diag)

    rank = _precedence(parsed.root)
    position = {group: index for index, group in enumerate(parsed.groups)}
    members: dict[str, list[Target]] = {group.name: [] for group in parsed.groups}
    targets: list[Target] = []
    for name, groups in direct.items():
        relevant = _with_ancestors(groups)
        data = Data()
        for group in sorted(relevant, key=rank.__getitem__):
            data = merge(data, group.data)
        own = sorted(defs.get(name, []), key=lambda d: rank[d.group])
        for definition in own:
            data = merge(data, definition.data)
        uri, parsed_uri = _uri(name, own, implicit)
        aliases = list(dict.fromkeys(alias for d in defs.get(name, []) for alias, _ in d.aliases))
        in_order = sorted(relevant, key=position.__getitem__)
        target = build_target(name, uri, parsed_uri, aliases, [g.name for g in in_order], data,
                              own_transport=_own_transport(own))
        targets.append(target)
        for group in in_order:
            members[group.name].append(target)

    by_name = {target.name: target for target in targets}
    return Resolved(targets=targets, by_name=by_name,
                    aliases={alias: by_name[name] for alias, (name, _) in alias_of.items()},
                    members=members, all_data=parsed.root.data)


def build_target(name: str, uri: str | None, parsed_uri: TargetUri | None, aliases: list[str],
                 groups: list[str], data: Data, own_transport: str | None = None) -> Target:
    """A Target from merged data. The URI beats config for transport, host, port and user.

    A target named ``localhost`` uses the local transport, as in Bolt, where that default sits
    at the target's own level: group config (``transport: ssh`` for everything) does not
    change it, a scheme in its URI or a ``transport`` in its own config (``own_transport``)
    does. Its config then says ``transport: local`` too, so the inventory shows what runs.
    """
    config = plain(data.config)
    transport = (parsed_uri and parsed_uri.transport) or own_transport
    if not transport and name == "localhost":
        transport = config["transport"] = "local"
    transport = transport or config.get("transport") or "ssh"
    settings = config.get(transport) or {}
    return Target(
        name=name, transport=transport, uri=uri,
        host=parsed_uri.host if parsed_uri else settings.get("host", name),
        port=parsed_uri.port if parsed_uri and parsed_uri.port is not None else settings.get("port"),
        user=parsed_uri.user if parsed_uri and parsed_uri.user else settings.get("user"),
        aliases=aliases, groups=groups, config=config,
        vars=plain(data.vars), facts=plain(data.facts), features=set(data.features))


def adhoc_target(uri: str, all_data: Data) -> Target:
    """A target that is not in the inventory, given by URI on the command line; it gets the
    top-level (``all``) data like any target. Raises ``UriError`` for an unusable URI."""
    return build_target(uri, uri, parse_uri(uri), [], ["all"], all_data)


def _own_transport(own: list[TargetDef]) -> str | None:
    """The ``transport`` a target's own definitions set (``own`` is lowest precedence first)."""
    for definition in reversed(own):
        if definition.data.config.get("transport"):
            return definition.data.config["transport"]
    return None


def _uri(name: str, own: list[TargetDef], implicit: dict[str, TargetUri]) -> tuple[str | None, TargetUri | None]:
    """The uri of the highest-precedence definition that has one (``own`` is lowest first);
    a target made from a plain string has that string as its uri; ``{name}`` alone has none."""
    for definition in reversed(own):
        if definition.uri is not None:
            return definition.uri, definition.parsed_uri
    if name in implicit:
        return name, implicit[name]
    return None, None


def _definitions(parsed: ParsedInventory) -> dict[str, list[TargetDef]]:
    """Mapping definitions per target name, in file order. Inside one group the first definition
    of a name wins and later ones are ignored (as in Bolt)."""
    defs: dict[str, list[TargetDef]] = {}
    seen: set[tuple[str, str]] = set()
    for entry in parsed.entries:
        if isinstance(entry, TargetDef):
            if (entry.group.name, entry.name) in seen:
                log.debug("Ignoring duplicate definition of target %s in group %s (line %s)",
                          entry.name, entry.group.name, entry.line)
                continue
            seen.add((entry.group.name, entry.name))
            defs.setdefault(entry.name, []).append(entry)
    return defs


def _aliases(defs: dict[str, list[TargetDef]], diag: Diagnostics) -> dict[str, tuple[str, int | None]]:
    """alias -> (target name, line of its first mention); an alias names exactly one target."""
    alias_of: dict[str, tuple[str, int | None]] = {}
    for name, definitions in defs.items():
        for definition in definitions:
            for alias, line in definition.aliases:
                if alias in defs:
                    raise diag.error(f"Target name {alias} conflicts with alias of the same name", line)
                other = alias_of.setdefault(alias, (name, line))[0]
                if other != name:
                    raise diag.error(f"Alias {alias} refers to multiple targets: {other} and {name}", line)
    return alias_of


def _membership(parsed: ParsedInventory, defs: dict[str, list[TargetDef]],
                alias_of: dict[str, tuple[str, int | None]], diag: Diagnostics,
                ) -> tuple[dict[str, list[GroupDef]], dict[str, int | None], dict[str, TargetUri]]:
    """Which groups list each target directly, in first-mention order of the targets.

    A string entry names a target defined as a mapping anywhere in the file, else an alias,
    else it is a new target whose name and uri are the string (parsed here, at its own line).
    """
    direct: dict[str, list[GroupDef]] = {}
    first_line: dict[str, int | None] = {}
    implicit: dict[str, TargetUri] = {}
    for entry in parsed.entries:
        name = entry.name
        if isinstance(entry, TargetRef) and name not in defs:
            if name in alias_of:
                name = alias_of[name][0]
            elif name not in implicit:
                try:
                    implicit[name] = parse_uri(name)
                except UriError as exc:
                    raise diag.error(str(exc), entry.line) from None
        groups = direct.setdefault(name, [])
        if entry.group not in groups:
            groups.append(entry.group)
        first_line.setdefault(name, entry.line)
    return direct, first_line, implicit


def _check_group_clashes(parsed: ParsedInventory, first_line: dict[str, int | None],
                         alias_of: dict[str, tuple[str, int | None]], diag: Diagnostics) -> None:
    """Group names share one namespace with target names and aliases (a target spec may be any)."""
    for group in parsed.groups:
        if group.name in first_line:
            raise diag.error(f"Group {group.name} conflicts with target of the same name",
                             _later(group.line, first_line[group.name]))
        if group.name in alias_of:
            raise diag.error(f"Group {group.name} conflicts with alias of the same name",
                             _later(group.line, alias_of[group.name][1]))


def _later(a: int | None, b: int | None) -> int | None:
    """The second of two definitions is the one to report: the first was fine until then."""
    return max((line for line in (a, b) if line is not None), default=None)


def _precedence(root: GroupDef) -> dict[GroupDef, int]:
    """Rank of each group, lowest precedence first: pre-order with children reversed.

    For ``all: [A: [A1, A2], B]`` this gives all < B < A < A2 < A1: a child beats its parent and
    an earlier sibling's whole branch beats a later sibling's.
    """
    rank: dict[GroupDef, int] = {}
    stack = [root]
    while stack:
        group = stack.pop()
        rank[group] = len(rank)
        stack.extend(group.children)
    return rank


def _with_ancestors(groups: list[GroupDef]) -> set[GroupDef]:
    """The groups and every group they are nested in, up to and including ``all``."""
    found: set[GroupDef] = set()
    for group in groups:
        node: GroupDef | None = group
        while node is not None and node not in found:
            found.add(node)
            node = node.parent
    return found
