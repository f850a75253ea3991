"""Bolt's data merge (Group#data_merge): config and facts deep, vars shallow, features union.

``merge`` is associative, which is what lets ``resolve`` fold a target's groups as one sorted list
instead of re-walking the group tree for every target (as Bolt does).
"""
from __future__ import annotations

from typing import Any

from .parse import Data


def deep_merge(low: dict, high: dict) -> dict:
    """``high`` over ``low``; nested mappings merge key by key, anything else is replaced whole."""
    result = dict(low)
    for key, value in high.items():
        if isinstance(value, dict) and isinstance(result.get(key), dict):
            value = deep_merge(result[key], value)
        result[key] = value
    return result


def merge(low: Data, high: Data) -> Data:
    """``high`` over ``low``. Vars merge shallowly: a hash var is replaced, not combined (Bolt)."""
    return Data(config=deep_merge(low.config, high.config),
                vars={**low.vars, **high.vars},
                facts=deep_merge(low.facts, high.facts),
                features=low.features + [f for f in high.features if f not in low.features])


def plain(value: Any) -> Any:
    """A deep copy made of plain dicts and lists, so no two targets share a mutable value and
    the line-tracking YAML types do not leak out of the inventory."""
    if isinstance(value, dict):
        return {key: plain(item) for key, item in value.items()}
    if isinstance(value, list):
        return [plain(item) for item in value]
    return value
