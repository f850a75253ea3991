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

    def error(self, message: str, line: int | None) -> InventoryError:
        """An error to raise, e.g. ``raise diag.error("...", line)``."""
        return InventoryError(message, self.path, line)

    def warn(self, message: str, line: int | None) -> None:
        """Record a warning, or raise it as an error in strict mode."""
        error = self.error(message, line)
        if self.strict:
            raise error
        self.warnings.append(str(error))
