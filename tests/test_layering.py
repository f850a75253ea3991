"""The import stack stays one-way: every import in puppetops/ and plans/ is allowed by the
layer table in docs/architecture.md (the one declaration of the layers, read here)."""
from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "architecture.md"
MARKER = "<!-- layers (read by tests/test_layering.py) -->"


def layer_table(text: str) -> list[tuple[str, list[str], set[str]]]:
    """(layer, module patterns, layers it may import) per row, in the table's order."""
    lines = text.split(MARKER, 1)[1].strip().splitlines()
    rows = []
    for line in lines[2:]:
        if not line.startswith("|"):
            break
        layer, modules, _, may = (cell.strip() for cell in line.strip("|").split("|"))
        allowed = set() if may == "—" else {name.strip() for name in may.split(",")}
        rows.append((layer, re.findall(r"`([^`]+)`", modules), allowed))
    return rows


def module_name(pattern: str) -> str:
    """``steps/lb/`` → puppetops.steps.lb (a package prefix); ``run`` → puppetops.run;
    ``__init__`` → puppetops; ``plans/`` → puppetops.plans."""
    if pattern == "__init__":
        return "puppetops"
    return "puppetops." + pattern.rstrip("/").replace("/", ".")


def modules() -> dict[str, tuple[Path, bool]]:
    """Every module: name → (file, is a package's __init__)."""
    found = {}
    for base, prefix in ((ROOT / "puppetops", ["puppetops"]), (ROOT / "plans", ["puppetops", "plans"])):
        for path in base.rglob("*.py"):
            parts = list(path.relative_to(base).with_suffix("").parts)
            package = parts[-1] == "__init__"
            name = ".".join(prefix + (parts[:-1] if package else parts))
            found[name] = (path, package)
    return found


def imports(path: Path, name: str, package: bool, known: set[str]) -> list[tuple[int, str]]:
    """(line, module) for every puppetops module ``path`` imports, anywhere in it."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names if a.name.startswith("puppetops")]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".") if package else name.split(".")[:-1]
                base = base[:len(base) - node.level + 1]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module or ""
            if not source.startswith("puppetops"):
                continue
            for alias in node.names:  # `from pkg import submodule` depends on the submodule
                sub = f"{source}.{alias.name}"
                found.append((node.lineno, sub if sub in known else source))
    return found


def layer_of(module: str, patterns: dict[str, str]) -> str | None:
    """The layer of the longest pattern that covers ``module`` (``x/`` covers a package and
    everything in it, ``x`` exactly that module)."""
    best = None
    for pattern, layer in patterns.items():
        name = module_name(pattern)
        covers = (module == name or module.startswith(name + ".")) if pattern.endswith("/") \
            else module == name
        if covers and (best is None or len(module_name(best)) < len(name)):
            best = pattern
    return patterns[best] if best else None


TABLE = layer_table(DOC.read_text())
PATTERNS = {pattern: layer for layer, patterns, _ in TABLE for pattern in patterns}
ALLOWED = {layer: allowed for layer, _, allowed in TABLE}
MODULES = modules()


def test_the_table_is_a_one_way_stack() -> None:
    """Each layer may import only layers declared above it: no cycle can be declared."""
    seen: set[str] = set()
    for layer, _, allowed in TABLE:
        assert allowed <= seen, f"{layer} may import {sorted(allowed - seen)}, not declared above it"
        seen.add(layer)


def test_every_module_has_a_layer() -> None:
    unplaced = sorted(m for m in MODULES if layer_of(m, PATTERNS) is None)
    assert not unplaced, f"modules in no layer of {DOC.name}: {unplaced}"
    empty = sorted(p for p in PATTERNS if not any(layer_of(m, {p: "x"}) for m in MODULES))
    assert not empty, f"{DOC.name} names modules that do not exist: {empty}"


@pytest.mark.parametrize("module", sorted(MODULES))
def test_imports_follow_the_layers(module: str) -> None:
    path, package = MODULES[module]
    mine = layer_of(module, PATTERNS)
    wrong = []
    for line, imported in imports(path, module, package, set(MODULES)):
        theirs = layer_of(imported, PATTERNS)
        if theirs is None:
            wrong.append(f"{path.relative_to(ROOT)}:{line}: {imported} is no module")
        elif theirs != mine and theirs not in ALLOWED[mine]:
            wrong.append(f"{path.relative_to(ROOT)}:{line}: {module} ({mine}) imports "
                         f"{imported} ({theirs})")
    assert not wrong, "\n".join(wrong)


def test_the_check_sees_a_forbidden_import(tmp_path: Path) -> None:
    """An upward import inside a function (how the old cycles hid) is found."""
    path = tmp_path / "x.py"
    path.write_text("def f():\n    from ..steps.lb import pool\n")
    found = imports(path, "puppetops.puppet.x", False, set(MODULES))
    assert found == [(2, "puppetops.steps.lb.pool")]
    assert layer_of("puppetops.puppet.x", PATTERNS) == "puppet"
    assert "lb" not in ALLOWED["puppet"]
