"""First pass: validate the raw inventory data and turn it into a tree of group and target entries.

Everything that can be checked where it is written is checked here, with the line of the
offending key: types, names, known keys, config values, URIs given as ``uri``. What needs the
whole file (string entries that refer to targets defined elsewhere, aliases, name clashes) is
left to ``resolve``. Mapping keys are walked in file order, so entries come out in the order a
reader sees them.

An explicit ``null`` (``vars:`` with its content commented out) counts as empty rather than as a
type error.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Mapping, Union

from .config import check_config, unknown_key
from .vars import VarSpec, check_vars
from .diagnostics import Diagnostics
from .schema import (DATA_TYPES, GROUP_KEYS, LIST, SUPPORTED_VERSION, TARGET_KEYS, TOP_LEVEL_KEYS,
                     describe_type, describe_value)
from .uri import TargetUri, UriError, parse_uri
from .yaml_lines import line_of, own_line

ALL = "all"
_ILLEGAL = re.compile(r"[\s,]")


@dataclass
class Data:
    """The inheritable data of one group or target entry."""

    config: dict[str, Any] = field(default_factory=dict)
    vars: dict[str, Any] = field(default_factory=dict)
    facts: dict[str, Any] = field(default_factory=dict)
    features: list[str] = field(default_factory=list)


@dataclass(eq=False)
class GroupDef:
    """A group as written; ``parent`` is ``None`` only for the implicit ``all`` group."""

    name: str
    line: int | None
    data: Data
    parent: GroupDef | None = None
    children: list[GroupDef] = field(default_factory=list)


@dataclass(eq=False)
class TargetDef:
    """A target entry written as a mapping: it defines the target and may carry data."""

    name: str
    group: GroupDef
    line: int | None
    uri: str | None
    parsed_uri: TargetUri | None
    aliases: list[tuple[str, int | None]]  # (alias, line)
    data: Data


@dataclass(eq=False)
class TargetRef:
    """A target entry written as a plain string: a reference, an alias or a new target (see resolve)."""

    name: str
    group: GroupDef
    line: int | None


Entry = Union[TargetDef, TargetRef]


@dataclass
class ParsedInventory:
    root: GroupDef
    groups: list[GroupDef]  # definition order, `all` first
    entries: list[Entry]    # file order


def parse(data: Any, diag: Diagnostics, var_table: Mapping[str, VarSpec] | None = None
          ) -> ParsedInventory:
    """Validate ``data`` (the loaded YAML document) and build its group/target tree; with a
    ``var_table``, vars are checked against it too (``vars.check_vars``)."""
    return _Parser(diag, var_table or {}).parse(data)


class _Parser:
    def __init__(self, diag: Diagnostics, var_table: Mapping[str, VarSpec]):
        self.diag = diag
        self.var_table = var_table
        self.groups: list[GroupDef] = []
        self.group_lines: dict[str, int | None] = {}
        self.entries: list[Entry] = []

    def parse(self, data: Any) -> ParsedInventory:
        if data is None:  # empty file
            data = {}
        if not isinstance(data, dict):
            raise self.diag.error("The inventory must be a mapping with keys such as 'targets' and "
                                  f"'groups', got {describe_type(data)}", own_line(data) or 1)
        version = data.get("version", SUPPORTED_VERSION)
        if type(version) is not int or version != SUPPORTED_VERSION:
            shown = "null" if version is None else repr(version) if isinstance(version, str) else version
            raise self.diag.error(f"Unsupported version {shown} specified in inventory "
                                  f"(puppetops reads version {SUPPORTED_VERSION})", line_of(data, "version"))
        self._reject_nodes(data, "at the top level")
        for key in data:
            if key == "name":
                self.diag.warn("Ignoring 'name' at the top level: the top level is always the "
                               f"'{ALL}' group", line_of(data, key))
            elif key not in TOP_LEVEL_KEYS:
                self.diag.warn(unknown_key(key, f"in group '{ALL}'", TOP_LEVEL_KEYS), line_of(data, key))
        root = self._group(ALL, data, own_line(data), parent=None)
        return ParsedInventory(root, self.groups, self.entries)

    # -- groups ----------------------------------------------------------------------------
    def _group(self, name: str, raw: dict, line: int | None, parent: GroupDef | None) -> GroupDef:
        owner = f"group '{name}'"
        group = GroupDef(name, line, self._data(raw, owner), parent)
        self.groups.append(group)
        self.group_lines[name] = line
        for key in raw:  # in file order, so targets and sub-groups keep the order they are written in
            if key == "targets":
                for index, entry in enumerate(self._list(raw, key, owner)):
                    self._target_entry(entry, raw[key], index, group)
            elif key == "groups":
                for index, entry in enumerate(self._list(raw, key, owner)):
                    group.children.append(self._group_entry(entry, raw[key], index, group))
        return group

    def _group_entry(self, raw: Any, items: list, index: int, parent: GroupDef) -> GroupDef:
        line = line_of(items, index)
        if not isinstance(raw, dict):
            raise self.diag.error(f"Group entry in group '{parent.name}' must be a mapping with a 'name' "
                                  f"key, got {describe_value(raw)}", line)
        if "name" not in raw:
            raise self.diag.error(f"Group does not have a name (in group '{parent.name}')", own_line(raw) or line)
        name, name_line = raw["name"], line_of(raw, "name")
        self._check_name(name, "Group name", name_line)
        if name in self.group_lines:
            first = self.group_lines[name]
            where = (" (the top level is the implicit 'all' group)" if name == ALL
                     else f" (first defined at line {first})" if first else "")
            raise self.diag.error(f"Tried to redefine group {name}{where}", name_line)
        self._reject_nodes(raw, f"in group '{name}'")
        for key in raw:
            if key not in GROUP_KEYS:
                self.diag.warn(unknown_key(key, f"in group '{name}'", GROUP_KEYS), line_of(raw, key))
        return self._group(name, raw, name_line, parent)

    def _reject_nodes(self, raw: dict, where: str) -> None:
        if "nodes" in raw:
            raise self.diag.error(f"Found 'nodes' {where}: inventory v1 is not supported; migrate to "
                                  "inventory v2 by renaming 'nodes' to 'targets'", line_of(raw, "nodes"))

    # -- targets ---------------------------------------------------------------------------
    def _target_entry(self, raw: Any, items: list, index: int, group: GroupDef) -> None:
        line = line_of(items, index)
        if isinstance(raw, str):
            self._check_name(raw, "Target name", line, ascii_only=True)
            self.entries.append(TargetRef(raw, group, line))
            return
        if not isinstance(raw, dict):
            raise self.diag.error(f"Target entry in group '{group.name}' must be a string or a mapping, "
                                  f"got {describe_value(raw)}", line)
        if "_plugin" in raw:
            raise self.diag.error(f"Inventory plugins are not supported (found _plugin in a target entry of "
                                  f"group '{group.name}')", line_of(raw, "_plugin"))
        name, uri = raw.get("name"), raw.get("uri")
        if name is None and uri is None:
            raise self.diag.error(f"No name or uri for target (in group '{group.name}')", own_line(raw) or line)
        parsed_uri = None
        if uri is not None:
            uri_line = line_of(raw, "uri")
            self._check_name(uri, "Target uri", uri_line, ascii_only=True)
            try:
                parsed_uri = parse_uri(uri)
            except UriError as exc:
                raise self.diag.error(str(exc), uri_line) from None
        if name is not None:
            self._check_name(name, "Target name", line_of(raw, "name"), ascii_only=True)
        else:
            name = uri  # `{uri: ...}`: the uri is the name
        owner = f"target '{name}'"
        for key in raw:
            if key not in TARGET_KEYS:
                self.diag.warn(unknown_key(key, f"in {owner}", TARGET_KEYS), line_of(raw, key))
        self.entries.append(TargetDef(name=name, group=group, line=own_line(raw) or line, uri=uri,
                                      parsed_uri=parsed_uri, aliases=self._aliases(raw, owner),
                                      data=self._data(raw, owner)))

    def _aliases(self, raw: dict, owner: str) -> list[tuple[str, int | None]]:
        value, line = raw.get("alias"), line_of(raw, "alias")
        if value is None:
            return []
        items = [(value, line)] if isinstance(value, str) else None
        if isinstance(value, list) and all(isinstance(item, str) for item in value):
            items = [(item, line_of(value, i) or line) for i, item in enumerate(value)]
        if items is None:
            raise self.diag.error(f"Alias entry on {owner} must be a string or a list of strings, "
                                  f"got {describe_value(value)}", line)
        for alias, alias_line in items:
            self._check_name(alias, "Alias", alias_line)
        return items

    # -- shared ----------------------------------------------------------------------------
    def _data(self, raw: dict, owner: str) -> Data:
        """The config/vars/facts/features of an entry, type-checked; missing or null -> empty."""
        values: dict[str, Any] = {}
        for key, kind in DATA_TYPES.items():
            value = raw.get(key)
            if value is None:
                continue
            if not kind.accepts(value):
                line = line_of(raw, key)
                if isinstance(value, list) and key == "features":  # point at the bad item
                    bad = next(i for i, item in enumerate(value) if not isinstance(item, str))
                    line = line_of(value, bad) or line
                raise self.diag.error(f"Expected '{key}' in {owner} to be {kind.expected}, "
                                      f"got {describe_value(value)}", line)
            values[key] = value
        if "config" in values:
            values["config"] = check_config(values["config"], owner, self.diag)
        if "vars" in values and self.var_table:
            check_vars(values["vars"], owner, self.diag, self.var_table)
        return Data(**values)

    def _list(self, raw: dict, key: str, owner: str) -> list:
        value = raw[key]
        if value is None:
            return []
        if not LIST.accepts(value):
            raise self.diag.error(f"Expected '{key}' in {owner} to be {LIST.expected}, "
                                  f"got {describe_value(value)}", line_of(raw, key))
        return value

    def _check_name(self, name: Any, what: str, line: int | None, ascii_only: bool = False) -> None:
        """Names are used on the command line, in comma-separated target specs: no commas, no spaces."""
        if not isinstance(name, str):
            raise self.diag.error(f"{what} must be a string, got {describe_value(name)}", line)
        if not name:
            raise self.diag.error(f"{what} must not be empty", line)
        if ascii_only and not name.isascii():
            raise self.diag.error(f"{what} must be ASCII characters: {name!r}", line)
        illegal = _ILLEGAL.search(name)
        if illegal:
            raise self.diag.error(f"Illegal character {illegal.group()!r} in {what.lower()} {name!r}", line)
