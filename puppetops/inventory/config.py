"""Validation of one ``config`` block (on the top level, a group or a target) against the schema.

Each block is checked where it is written, so a wrong type is reported at its own line even
though the value only matters after merging. Unknown keys are warnings (Bolt has many more
transports and options than puppetops), wrong types of known keys are errors.
"""
from __future__ import annotations

import difflib
from typing import Any, Iterable

from .diagnostics import Diagnostics
from .schema import CONFIG_KEYS, OTHER_BOLT_TRANSPORTS, TRANSPORT, TRANSPORT_OPTIONS, describe_value
from .yaml_lines import line_of


def unknown_key(key: Any, where: str, known: Iterable[str]) -> str:
    """The warning text for an unknown key, with a suggestion when it looks like a typo."""
    close = difflib.get_close_matches(str(key), sorted(known), n=1)
    return f"Unknown option '{key}' {where}" + (f" (did you mean '{close[0]}'?)" if close else "")


def check_config(config: dict, owner: str, diag: Diagnostics) -> dict[str, Any]:
    """Validate ``config`` of ``owner`` ("group 'web'") and return it with empty sections as ``{}``."""
    clean: dict[str, Any] = {}
    for key, value in config.items():
        line = line_of(config, key)
        if key == "transport":
            if not TRANSPORT.accepts(value):
                raise diag.error(f"Invalid value for config option 'transport' in {owner}: expected "
                                 f"{TRANSPORT.expected}, got {describe_value(value)}", line)
        elif key in TRANSPORT_OPTIONS:
            value = _check_section(key, value, owner, line, diag)
        elif key in OTHER_BOLT_TRANSPORTS:  # Bolt's, kept as written
            value = _mapping(key, value, owner, line, diag)
        else:
            diag.warn(unknown_key(key, f"in config of {owner}", CONFIG_KEYS), line)
        clean[key] = value
    return clean


def _check_section(transport: str, section: Any, owner: str, line: int | None, diag: Diagnostics) -> dict:
    """Validate ``config.<transport>`` against that transport's option table."""
    section = _mapping(transport, section, owner, line, diag)
    options = TRANSPORT_OPTIONS[transport]
    for key, value in section.items():
        key_line = line_of(section, key)
        option = options.get(key)
        if option is None:
            diag.warn(unknown_key(key, f"in config.{transport} of {owner}", options), key_line)
        elif not option.type.accepts(value):
            message = (f"Invalid value for config option '{transport}.{key}' in {owner}: expected "
                       f"{option.type.expected}, got {describe_value(value, secret=option.secret)}")
            raise diag.error(message + (f". {option.type.hint}" if option.type.hint else ""), key_line)
    return section


def _mapping(transport: str, section: Any, owner: str, line: int | None, diag: Diagnostics) -> dict:
    """``config.<transport>`` as a mapping: ``{}`` when null (everything commented out)."""
    if section is None:
        return {}
    if not isinstance(section, dict):
        raise diag.error(f"Expected 'config.{transport}' in {owner} to be a mapping, "
                         f"got {describe_value(section)}", line)
    return section
