"""Bounded numbers — counts, seconds, percentages, ports, file modes — declared once with the
words that say what they must be.

Each is checked in one place whatever the value came from: a plan parameter or a run option
on the command line (``params``), the inventory's transport config (``inventory.schema``), the
webhook's config file and flags (``webhook.config``). A value that is not one is refused the
same way everywhere, ``<place>: expected <what>, got <value>``; only the place differs (``--batch-size``,
``inventory.yaml:7: ... ssh.attempts``, ``webhook.yaml: workers``).
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

from .errors import UsageError


@dataclass(frozen=True)
class Bound:
    """A number of type ``kind`` (int or float) in a range, and how to say so (``expected``).

    Also ``Annotated`` metadata for ``params``: ``Annotated[int, Bound(...)]``."""

    expected: str
    low: float | None = None
    high: float | None = None
    low_inclusive: bool = True
    kind: type = float

    def admits(self, number: float) -> bool:
        """Whether a number (of either type) is in the range; never for NaN or infinity."""
        if not math.isfinite(number):
            return False
        if self.low is not None and (number < self.low if self.low_inclusive else number <= self.low):
            return False
        return self.high is None or number <= self.high

    def accepts(self, value: Any) -> bool:
        """Whether ``value``, as YAML or Python gave it, is one: of the right type (a boolean
        is no number, a float no integer) and in the range."""
        if isinstance(value, bool) or not isinstance(value, int if self.kind is int else (int, float)):
            return False
        return self.admits(value)

    def refusal(self, value: Any) -> str:
        """The one wording of a refused value; the caller puts the place in front."""
        return f"expected {self.expected}, got {value!r}"

    def check(self, value: Any, where: str) -> Any:
        """``value`` if it is one, else ``UsageError`` ``<where>: expected ..., got ...``."""
        if not self.accepts(value):
            raise UsageError(f"{where}: {self.refusal(value)}")
        return value

    def parse(self, text: str, where: str) -> Any:
        """``text`` (a command-line word) as this number, checked; ``UsageError`` naming
        ``where`` if it is not one."""
        try:
            number = self.kind(text.strip())
        except ValueError:
            raise UsageError(f"{where}: {self.refusal(text)}") from None
        if not self.admits(number):
            raise UsageError(f"{where}: {self.refusal(text)}")
        return number


def at_least(least: int, what: str = "an integer") -> Bound:
    """A whole number of ``least`` or more (``what``: how to name it, e.g. "a number of bytes")."""
    return Bound(f"{what} of at least {least}", low=least, kind=int)


COUNT = at_least(1)
SECONDS = Bound("a number of seconds greater than 0", low=0, low_inclusive=False)
PERCENTAGE = Bound("a percentage from 0 to 100", low=0, high=100)
PORT = Bound("an integer between 1 and 65535", low=1, high=65535, kind=int)

_FILE_MODE = re.compile(r"[0-7]{3,4}")


def file_mode(text: str) -> int:
    """A file mode written in octal (``644``, ``0644``, ``2775``) as its number; ``UsageError``
    (for ``params.Check`` to put the option's name in front) if ``text`` is not one."""
    if not _FILE_MODE.fullmatch(text.strip()):
        raise UsageError(f"expected an octal file mode like 0644, got {text!r}")
    return int(text.strip(), 8)


__all__ = ["Bound", "COUNT", "PERCENTAGE", "PORT", "SECONDS", "at_least", "file_mode"]
