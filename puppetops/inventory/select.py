"""Target selection: turn a target spec (``"web*,db1,compilers"``) into Targets.

Each item may be a target name, an alias, a group name (``all`` included), a glob over all of
those, or a URI of a host that is not in the inventory. Unknown names are errors with "did you
mean" suggestions rather than silently new hosts, because a typo in an orchestration run should
stop it before anything happens.
"""
from __future__ import annotations

import difflib
from fnmatch import fnmatchcase
from typing import Iterable, Sequence

from ..errors import TargetNotFound, UsageError
from ..target import Target
from .resolve import Resolved, adhoc_target
from .uri import UriError

_GLOB_CHARS = frozenset("*?[")


def split_spec(spec: str | Sequence[str]) -> list[str]:
    """The items of a spec: comma-separated in a string or in each string of a list."""
    parts = [spec] if isinstance(spec, str) else list(spec)
    return [item.strip() for part in parts for item in part.split(",") if item.strip()]


def find(inventory: Resolved, name: str) -> Target | None:
    """A target by name or alias."""
    return inventory.by_name.get(name) or inventory.aliases.get(name)


def get(inventory: Resolved, name: str) -> Target:
    """A target by name or alias; ``TargetNotFound`` with suggestions otherwise."""
    target = find(inventory, name)
    if target is None:
        raise TargetNotFound(_unknown(inventory, name))
    return target


def select(inventory: Resolved, spec: str | Sequence[str] | None) -> list[Target]:
    """The targets a spec names, without duplicates, in first-seen order (``None``: all)."""
    if spec is None:
        return list(inventory.targets)
    selected: dict[str, Target] = {}
    for item in split_spec(spec):
        for target in _expand(inventory, item):
            selected.setdefault(target.name, target)
    return list(selected.values())


def select_some(inventory: Resolved, spec: str, what: str) -> list[Target]:
    """``select`` for a spec an operator gave (``what`` names where: ``--targets``,
    ``loadbalancers=``): one that selects nothing (``-t ''``, an empty group) is a usage error,
    never a run on zero targets that reports success."""
    selected = select(inventory, spec)
    if not selected:
        raise TargetNotFound(f"{what} {spec!r} selects no targets; give target names, aliases, "
                             "groups, globs, or all")
    return selected


def _expand(inventory: Resolved, item: str) -> Iterable[Target]:
    target = find(inventory, item)
    if target is not None:
        return [target]
    if item in inventory.members:
        return inventory.members[item]
    if _GLOB_CHARS.intersection(item):
        return _glob(inventory, item)
    if "://" in item or "@" in item:
        try:
            return [adhoc_target(item, inventory.all_data)]
        except UriError as exc:
            raise UsageError(f"Invalid target '{item}': {exc}") from None
    raise TargetNotFound(_unknown(inventory, item))


def _glob(inventory: Resolved, pattern: str) -> list[Target]:
    """Targets whose name or alias matches, plus the targets of matching groups, in inventory order."""
    matched: set[str] = set()
    for name, target in (*inventory.by_name.items(), *inventory.aliases.items()):
        if fnmatchcase(name, pattern):
            matched.add(target.name)
    for group, members in inventory.members.items():
        if fnmatchcase(group, pattern):
            matched.update(target.name for target in members)
    if not matched:
        raise TargetNotFound(f"Found 0 targets matching wildcard pattern {pattern}")
    return [target for target in inventory.targets if target.name in matched]


def _unknown(inventory: Resolved, name: str) -> str:
    names = [*inventory.by_name, *inventory.aliases, *inventory.members]
    close = difflib.get_close_matches(name, names, n=3)
    return f"Unknown target or group '{name}'." + (f" Did you mean: {', '.join(close)}?" if close else "")
