"""``Inventory``: a Bolt v2 ``inventory.yaml``, loaded, validated, merged and ready to select from.

Loading is all-or-nothing: any problem raises ``InventoryError`` naming the file and line before
a single target is contacted, and nothing of the input (YAML errors, wrong types) escapes as a
raw Python exception.
"""
from __future__ import annotations

import os
from typing import Any, Iterable, Mapping, Sequence

from ..errors import InventoryError
from ..target import Target
from . import select as selection
from .diagnostics import Diagnostics
from .parse import parse
from .resolve import resolve
from .vars import VarSpec
from .yaml_lines import load_yaml


class Inventory:
    """The targets and groups of one inventory source. Build it with ``load`` or ``from_dict``."""

    def __init__(self, data: Any, path: str, strict: bool,
                 var_table: Mapping[str, VarSpec] | None = None):
        diag = Diagnostics(path, strict)
        try:
            parsed = parse(data, diag, var_table)
            self._resolved = resolve(parsed, diag)
            diag.check_strict()
        except RecursionError:  # absurdly deep nesting, or a YAML anchor that contains itself
            raise InventoryError("The inventory is nested too deeply (or refers to itself)", path) from None
        self.path: str = path
        self.warnings: list[str] = diag.warnings
        self.group_names: list[str] = [group.name for group in parsed.groups]

    @classmethod
    def load(cls, path: str | os.PathLike[str], strict: bool = False,
             var_table: Mapping[str, VarSpec] | None = None) -> Inventory:
        """Read an inventory file. A missing file is an error: this path was asked for explicitly.
        ``var_table``: the vars a program reads, to check the file's vars against (``vars``)."""
        path = os.fspath(path)
        try:
            with open(path, "rb") as handle:
                text = handle.read()
        except FileNotFoundError:
            raise InventoryError("Inventory file not found", path) from None
        except OSError as exc:
            raise InventoryError(f"Cannot read inventory file: {exc.strerror or exc}", path) from None
        return cls(load_yaml(text, path), path, strict, var_table)

    @classmethod
    def from_dict(cls, data: Any, path: str = "<dict>", strict: bool = False) -> Inventory:
        """Build an inventory from already-loaded data (messages then carry no line numbers)."""
        return cls(data, path, strict)

    @property
    def targets(self) -> list[Target]:
        """Every target, in definition order."""
        return list(self._resolved.targets)

    def get(self, name: str) -> Target:
        """A target by name or alias; ``TargetNotFound`` (with suggestions) otherwise."""
        return selection.get(self._resolved, name)

    def select(self, spec: str | Sequence[str] | None) -> list[Target]:
        """Targets for a spec of names, aliases, groups, globs and URIs (see ``select.select``)."""
        return selection.select(self._resolved, spec)

    def select_some(self, spec: str, what: str = "target spec") -> list[Target]:
        """Like ``select``, but a spec that selects nothing is a ``TargetNotFound``."""
        return selection.select_some(self._resolved, spec, what)

    def to_dict(self, targets: Iterable[Target] | None = None) -> dict[str, Any]:
        """``{"targets": {name: target.describe()}}`` for ``targets`` (default: all)."""
        chosen = self._resolved.targets if targets is None else targets
        return {"targets": {target.name: target.describe() for target in chosen}}

    def __repr__(self) -> str:
        return f"<Inventory {self.path}: {len(self._resolved.targets)} targets, {len(self.group_names)} groups>"
