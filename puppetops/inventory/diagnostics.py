"""Errors and warnings about one inventory source, in one ``FILE:LINE: message`` format.

Bolt treats unknown keys as warnings so an inventory written for a newer version still loads;
``strict`` mode (CI, linting) turns those warnings into errors instead.
"""
from __future__ import annotations

from ..errors import InventoryError


class Diagnostics:
    """Collects warnings for ``path`` and builds errors that point at a line of it."""

    def __init__(self, path: str, strict: bool):
        self.path, self.strict = path, strict
        self.warnings: list[str] = []
        self._first: tuple[str, int | None] | None = None

    def error(self, message: str, line: int | None) -> InventoryError:
        """An error to raise, e.g. ``raise diag.error("...", line)``."""
        return InventoryError(message, self.path, line)

    def warn(self, message: str, line: int | None) -> None:
        """Record a warning (in strict mode an error, which ``check_strict`` raises)."""
        self._first = self._first or (message, line)
        self.warnings.append(str(self.error(message, line)))

    def check_strict(self) -> None:
        """In strict mode every warning is an error: one ``InventoryError`` holding them all,
        a ``FILE:LINE: message`` line each, so one run shows everything there is to fix."""
        if self.strict and self._first is not None:
            message, line = self._first
            raise self.error(message + "".join(f"\n{w}" for w in self.warnings[1:]), line)
