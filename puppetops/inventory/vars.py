"""The vars an inventory sets, checked against a table of the vars a program reads (for
puppetops: ``puppetops.puppet.vars.VARS``, passed in by the command line).

A var of the table whose value it cannot take (``lb_backend: haproxi``), or an unknown var
that looks like a misspelling of one (``lb_backnd``), is a warning naming file and line (an
error with ``strict``): before, such a var was silently ignored and its default used. Every
other var is the user's own and is kept silently — Bolt inventories carry arbitrary vars.
"""
from __future__ import annotations

import difflib
from typing import Any, Mapping, Protocol

from .diagnostics import Diagnostics
from .schema import describe_value
from .yaml_lines import line_of

# How alike a var must be to a known one to be taken for its misspelling: lb_backnd and
# cert_keysize are; a user's own var (role, datacenter) is not.
CLOSE = 0.85


class VarSpec(Protocol):
    """What the check needs to know of one var."""

    expected: str

    def accepts(self, value: Any) -> bool: ...


def check_vars(values: dict, owner: str, diag: Diagnostics, table: Mapping[str, VarSpec]) -> None:
    """Warn about the vars of ``owner`` ("group 'web'") the ``table`` says are wrong."""
    for key, value in values.items():
        spec = table.get(key) if isinstance(key, str) else None
        if spec is not None:
            if not spec.accepts(value):
                diag.warn(f"Invalid value for var '{key}' in {owner}: expected {spec.expected}, "
                          f"got {describe_value(value)}", line_of(values, key))
            continue
        close = difflib.get_close_matches(str(key), list(table), n=1, cutoff=CLOSE)
        if close:
            diag.warn(f"Unknown var '{key}' in {owner}: did you mean '{close[0]}'? (puppetops "
                      f"reads '{close[0]}' and ignores '{key}')", line_of(values, key))
