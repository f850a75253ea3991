"""Broken inventories (property-based): random YAML documents and mutations of a valid
inventory — wrong types at every key, unknown keys, bad URIs, duplicate and hostile names,
self-referring anchors, deep nesting — either load or fail with one ``FILE:LINE: message``
InventoryError; through the CLI they exit 0 or 2, never with a traceback."""
from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from puppetops.errors import InventoryError
from puppetops.inventory import Inventory
from puppetops.inventory.schema import (BOLT_TRANSPORTS, GROUP_KEYS, TARGET_KEYS, TOP_LEVEL_KEYS,
                                       TRANSPORT_OPTIONS)

from helpers import cli
from hostile import Canary, examples, hostile

CANARY = Canary()
KEYS = sorted(TOP_LEVEL_KEYS | GROUP_KEYS | TARGET_KEYS | set(BOLT_TRANSPORTS)
              | {"transport", "_plugin", "var", "nodes", "uri"}
              | {option for options in TRANSPORT_OPTIONS.values() for option in options})
SCALARS = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=20),
                    hostile(CANARY, long=False), st.sampled_from(
                        ["ssh://u@h:22", "local://x", "winrm://h", "docker://c", "h:0", "ssh://[::1", "u:pw@h", "ftp://h",
                         "ssh://h/path", "h:99999", "2", "all", "..", "-", "a,b", "a b"]))
KEY = st.one_of(st.sampled_from(KEYS), st.text(max_size=10), st.integers(), st.booleans())
DOCUMENTS = st.recursive(SCALARS, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(KEY, inner, max_size=5)), max_leaves=30)

VALID: dict[str, Any] = {
    "config": {"transport": "ssh", "ssh": {"user": "root", "port": 22, "connect-timeout": 10,
                                           "attempts": 3, "host-key-check": True,
                                           "sudo-password": {"_plugin": "env_var", "var": "PW"}}},
    "vars": {"lb_name": "lb.example.com"},
    "facts": {"os": {"family": "Debian"}},
    "features": ["puppet-agent"],
    "groups": [
        {"name": "main", "targets": [{"name": "puppet.example.com", "alias": "main1"}]},
        {"name": "compilers", "vars": {"x": 1},
         "groups": [{"name": "east", "targets": ["compiler1.example.com"]}],
         "targets": [{"name": "compiler2.example.com", "alias": ["c2", "compiler2"],
                      "uri": "ssh://deploy@10.0.0.12:2222", "config": {"ssh": {"run-as": "root"}}}]},
        {"name": "agents", "config": {"local": {"command-timeout": 5}},
         "targets": ["web1.example.com", {"uri": "local://web2"}]},
    ],
    "targets": ["puppet.example.com"],
}

PURE = examples(150)
SUBPROCESS = examples(10, process_each=True)
OUTCOME = "loads, or one error naming file:line and what is expected (exit 2); no traceback"


def load_or_located_error(path: Path, text: str) -> Inventory | None:
    """Load ``text`` from ``path``; an invalid one must be an InventoryError at a line."""
    path.write_text(text)
    try:
        return Inventory.load(path)
    except InventoryError as exc:
        assert exc.path == str(path) and exc.line is not None and exc.line >= 1, str(exc)
        assert str(exc).startswith(f"{path}:{exc.line}: "), str(exc)
        assert "\n" not in str(exc), str(exc)  # one line
        return None
    finally:
        CANARY.assert_absent()


def dump(data: Any) -> str:
    return yaml.safe_dump(data, default_flow_style=False, allow_unicode=True, width=1 << 20)


@pytest.mark.slow
@pytest.mark.reliability(fault="random YAML documents as inventory (any shape, scalar, key)",
                         outcome=OUTCOME)
@PURE
@given(DOCUMENTS)
def test_random_documents(tmp_path, data):
    load_or_located_error(tmp_path / "inventory.yaml", dump(data))


def _containers(data: Any, at: tuple = ()) -> list[tuple]:
    """Paths (tuples of keys/indexes) of every mapping and list in ``data``."""
    found = [at]
    items = data.items() if isinstance(data, dict) else enumerate(data) if isinstance(data, list) else []
    for key, value in items:
        if isinstance(value, (dict, list)):
            found += _containers(value, at + (key,))
    return found


def _get(data: Any, at: tuple) -> Any:
    for key in at:
        data = data[key]
    return data


def _mutate(data: dict, draw) -> None:
    """One mutation at a random place of ``data`` (in place)."""
    at = draw(st.sampled_from(_containers(data)))
    node = _get(data, at)
    kind = draw(st.sampled_from(["replace", "unknown key", "drop", "duplicate", "nest", "uri",
                                 "name"]))
    if kind == "replace" and node:
        key = draw(st.sampled_from(list(node) if isinstance(node, dict) else range(len(node))))
        node[key] = draw(DOCUMENTS)
    elif kind == "unknown key" and isinstance(node, dict):
        node[draw(KEY)] = draw(DOCUMENTS)
    elif kind == "drop" and node:
        key = draw(st.sampled_from(list(node) if isinstance(node, dict) else range(len(node))))
        del node[key]
    elif kind == "duplicate" and isinstance(node, list) and node:
        node.append(copy.deepcopy(draw(st.sampled_from(node))))
    elif kind == "nest":
        depth = draw(st.integers(1, 60))
        deep: Any = draw(SCALARS)
        for level in range(depth):
            deep = {"name": f"g{level}", "groups": [deep]} if level % 3 else [deep]
        if isinstance(node, dict):
            node[draw(st.sampled_from(["groups", "vars", "config", "targets"]))] = deep
        else:
            node.append(deep)
    elif kind in ("uri", "name") and isinstance(node, dict):
        node[kind] = draw(SCALARS)


@pytest.mark.slow
@pytest.mark.reliability(fault="mutated valid inventories (wrong types at each key, unknown "
                               "keys, bad URIs, duplicate or hostile names, deep nesting)",
                         outcome=OUTCOME)
@PURE
@given(st.data())
def test_mutated_inventories(tmp_path, data):
    mutated = copy.deepcopy(VALID)
    for _ in range(data.draw(st.integers(1, 3), label="mutations")):
        _mutate(mutated, data.draw)
    inventory = load_or_located_error(tmp_path / "inventory.yaml", dump(mutated))
    if inventory is not None:  # what loads is usable: every target resolves to a host
        for target in inventory.targets:
            assert target.host and target.transport in BOLT_TRANSPORTS


@pytest.mark.reliability(fault="YAML that refers to itself (an alias inside its own anchor) "
                               "or nests beyond any inventory",
                         outcome="exit 2 naming file:line; no recursion error")
@pytest.mark.parametrize("text,line", [
    ("vars: &v {a: *v}\ntargets: [a]\n", 1),
    ("targets:\n  - name: a\n    config: &c\n      ssh: *c\n", 3),
    ("groups:\n  - &g\n    name: x\n    groups: [*g]\n", 2),
    ("targets: [a]\nfeatures: &f [a, *f]\n", 2),
    ("vars:\n  deep: " + "[" * 120 + "]" * 120 + "\n", 2),
])
def test_self_reference_and_depth_are_located(tmp_path, text, line):
    path = tmp_path / "inventory.yaml"
    path.write_text(text)
    with pytest.raises(InventoryError) as info:
        Inventory.load(path)
    assert info.value.line == line and str(info.value).startswith(f"{path}:{line}: ")


@pytest.mark.reliability(fault="infinite or NaN timeouts in the inventory (.inf, .nan)",
                         outcome="exit 2 naming the option and its line (a socket cannot take "
                                 "an infinite timeout)")
@pytest.mark.parametrize("value", [".inf", "-.inf", ".nan"])
def test_non_finite_timeouts_are_refused(tmp_path, value):
    path = tmp_path / "inventory.yaml"
    path.write_text(f"config:\n  ssh:\n    connect-timeout: {value}\ntargets: [a]\n")
    with pytest.raises(InventoryError, match="connect-timeout"):
        Inventory.load(path)


@pytest.mark.reliability(fault="random and mutated inventories through the CLI "
                               "(`puppetops inventory`)",
                         outcome="exit 0, or exit 2 with `error: FILE:LINE: ...`; never a "
                                 "traceback")
@pytest.mark.slow
@SUBPROCESS
@given(st.data(), st.booleans(), st.booleans())
def test_cli_never_shows_a_traceback(tmp_path, data, mutate, strict):
    if mutate:
        document = copy.deepcopy(VALID)
        _mutate(document, data.draw)
    else:
        document = data.draw(DOCUMENTS)
    path = tmp_path / "inventory.yaml"
    path.write_text(dump(document))
    proc = cli("inventory", "-i", str(path), "--format", "json", *(["--strict"] if strict else []))
    assert "Traceback" not in proc.stderr + proc.stdout
    assert proc.returncode in (0, 2), (proc.returncode, proc.stderr[-2000:])
    if proc.returncode == 2:
        assert re.match(rf"error: {re.escape(str(path))}:\d+: ", proc.stderr), proc.stderr[-2000:]
    CANARY.assert_absent()


@pytest.mark.reliability(fault="inventory data JSON has no form for (integer and date keys "
                               "mixed with string keys, dates, binary, sets)",
                         outcome="`inventory --format json` lists it as text, exit 0")
def test_inventory_json_shows_yaml_only_data(tmp_path):
    path = tmp_path / "inventory.yaml"
    path.write_text("targets:\n  - name: a\n    vars:\n      1: one\n      b: two\n"
                    "      2001-01-01: date key\n      when: 2001-01-02\n"
                    "      blob: !!binary aGVsbG8=\n      tags: !!set {x}\n")
    proc = cli("inventory", "-i", str(path), "--format", "json")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["targets"]["a"]["vars"] == {
        "1": "one", "b": "two", "2001-01-01": "date key", "when": "2001-01-02",
        "blob": "b'hello'", "tags": ["x"]}
