"""A PyYAML loader that remembers line numbers, so every inventory message can say ``file:line``.

Plain ``yaml.safe_load`` throws the positions away. Here mappings and sequences come back as
``LineDict``/``LineList``: ordinary ``dict``/``list`` subclasses that also know their own line and
the line of each key or item. Scalars stay plain Python values; their line is the line of the key
or item that holds them, which is also what a user wants to see in an error.

Data that did not come from YAML (``Inventory.from_dict``) simply has no lines: ``line_of`` then
returns ``None`` and messages name only the source.
"""
from __future__ import annotations

from typing import Any, Iterator

import yaml
from yaml.constructor import ConstructorError

from ..errors import InventoryError

_MERGE_TAG = "tag:yaml.org,2002:merge"
# Far deeper than any inventory (a nested group costs two levels); deeper data would only
# exhaust the recursion of the passes that walk it, which could no longer say where.
MAX_DEPTH = 100


class LineDict(dict):
    """A mapping read from YAML: ``line`` is where it starts, ``key_lines[key]`` where each key is."""

    line: int | None = None
    key_lines: dict[Any, int]


class LineList(list):
    """A sequence read from YAML: ``line`` is where it starts, ``item_lines[i]`` where item i is."""

    line: int | None = None
    item_lines: list[int]


def line_of(container: Any, key: Any) -> int | None:
    """The line of ``key`` in a mapping or of item ``key`` in a list, or ``None`` if unknown."""
    if isinstance(container, LineDict):
        return container.key_lines.get(key, container.line)
    if isinstance(container, LineList) and isinstance(key, int) and 0 <= key < len(container.item_lines):
        return container.item_lines[key]
    return None


def own_line(value: Any) -> int | None:
    """The line where a mapping or list starts, or ``None`` for scalars and non-YAML data."""
    return value.line if isinstance(value, (LineDict, LineList)) else None


# CSafeLoader (libyaml) when available: same results and marks, parsing several times faster.
class _LineLoader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
    """SafeLoader whose mappings and sequences carry line numbers; duplicate keys are errors."""


def _construct_mapping(loader: yaml.SafeLoader, node: yaml.MappingNode) -> Iterator[LineDict]:
    data = LineDict()
    data.line, data.key_lines = node.start_mark.line + 1, {}
    yield data  # yielded first so that recursive anchors can refer to it, as SafeLoader does
    # YAML forbids duplicate keys but PyYAML silently keeps the last one: a second `groups:` key
    # would drop the first block without a word. Merge keys (<<) may be overridden legitimately,
    # so only the mapping's own keys are compared.
    seen: dict[tuple[str, Any], int] = {}
    for key_node, _ in node.value:
        if key_node.tag == _MERGE_TAG or not isinstance(key_node, yaml.ScalarNode):
            continue
        ident = (key_node.tag, key_node.value)
        line = key_node.start_mark.line + 1
        if ident in seen:
            raise ConstructorError("while constructing a mapping", node.start_mark,
                                   f"found duplicate key '{key_node.value}' (first at line {seen[ident]})",
                                   key_node.start_mark)
        seen[ident] = line
    loader.flatten_mapping(node)
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node)
        try:
            hash(key)
        except TypeError:
            raise ConstructorError("while constructing a mapping", node.start_mark,
                                   "found a list or mapping used as a key", key_node.start_mark) from None
        data[key] = loader.construct_object(value_node)
        data.key_lines[key] = key_node.start_mark.line + 1


def _construct_sequence(loader: yaml.SafeLoader, node: yaml.SequenceNode) -> Iterator[LineList]:
    data = LineList()
    data.line = node.start_mark.line + 1
    data.item_lines = [item.start_mark.line + 1 for item in node.value]
    yield data
    data.extend(loader.construct_object(item) for item in node.value)


_LineLoader.add_constructor("tag:yaml.org,2002:map", _construct_mapping)
_LineLoader.add_constructor("tag:yaml.org,2002:seq", _construct_sequence)


def load_yaml(text: bytes | str, path: str) -> Any:
    """Parse one YAML document; any YAML problem becomes an ``InventoryError`` with its line."""
    try:
        data = yaml.load(text, Loader=_LineLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        reason = "; ".join(part for part in (exc.context, exc.problem) if part)
        raise InventoryError(f"Invalid YAML: {reason}", path, mark.line + 1 if mark else None) from None
    except yaml.YAMLError as exc:  # e.g. ReaderError: bytes that are not valid UTF-8/16
        raise InventoryError(f"Invalid YAML: {exc}", path) from None
    _check_shape(data, path)
    return data


def _check_shape(data: Any, path: str) -> None:
    """Refuse, at its line, data that contains itself (an alias inside its own anchor:
    ``vars: &v {a: *v}``) or nests deeper than ``MAX_DEPTH``. Iterative, so the check itself
    cannot run out of stack; shared anchors that do not contain themselves are fine."""
    stack: list[tuple[Any, int, bool]] = [(data, 1, True)]
    open_ids: set[int] = set()  # the containers on the current path from the root
    while stack:
        value, depth, entering = stack.pop()
        if not isinstance(value, (LineDict, LineList)):
            continue
        if not entering:
            open_ids.discard(id(value))
            continue
        if id(value) in open_ids:
            raise InventoryError("Invalid YAML: the data anchored here contains an alias to "
                                 "itself", path, value.line)
        if depth > MAX_DEPTH:
            raise InventoryError(f"Invalid YAML: nested more than {MAX_DEPTH} levels deep",
                                 path, value.line)
        open_ids.add(id(value))
        stack.append((value, depth, False))
        children = value.values() if isinstance(value, LineDict) else value
        stack.extend((child, depth + 1, True) for child in children)
