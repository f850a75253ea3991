"""The import stack stays one-way: every import in puppetops/ and plans/ is allowed by the
layer table in docs/architecture.md (the one declaration of the layers, read here). Within
the plans layer, a plan module imports no other plan module (what plans share lives below
them), and the CLI takes a plan by its function, never a plan module's helpers."""
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


def imported_names(path: Path, name: str, package: bool) -> list[tuple[int, str, str | None]]:
    """(line, module, name) for every import of a puppetops module in ``path``, anywhere in
    it: ``from module import name``, or name None for ``import module``."""
    found: list[tuple[int, str, str | None]] = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name, None) for a in node.names
                      if a.name.startswith("puppetops")]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".") if package else name.split(".")[:-1]
                base = base[:len(base) - node.level + 1]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module or ""
            if source.startswith("puppetops"):
                found += [(node.lineno, source, alias.name) for alias in node.names]
    return found


def imports(path: Path, name: str, package: bool, known: set[str]) -> list[tuple[int, str]]:
    """(line, module) for every puppetops module ``path`` imports, anywhere in it."""
    found = []
    for line, source, imported in imported_names(path, name, package):
        sub = f"{source}.{imported}"  # `from pkg import submodule` depends on the submodule
        found.append((line, sub if imported is not None and sub in known else source))
    return found


PLANS = "puppetops.plans"


def plan_module(module: str) -> str | None:
    """The plan module ``module`` is or lies in (``puppetops.plans.deploy_code``), None
    for the package root and for anything outside the plans."""
    parts = module.split(".")
    return ".".join(parts[:3]) if module.startswith(PLANS + ".") else None


def cross_plan_imports(path: Path, module: str, package: bool, layer: str | None
                       ) -> list[tuple[int, str]]:
    """(line, why) for each import that reaches into another plan module: a plan module
    importing another (or the package, which imports them all) — what plans share lives
    below them, and a plan runs another by name (``run.plan``) — and the CLI importing a
    plan module's helpers rather than its plan (``puppetops.plans.X``'s ``X``)."""
    mine = plan_module(module)
    wrong = []
    for line, source, name in imported_names(path, module, package):
        theirs = plan_module(source if name is None else f"{source}.{name}")
        if mine is not None and (source == PLANS or theirs not in (None, mine)):
            target = source if name is None else f"{source}.{name}"
            wrong.append((line, f"plan module {mine} imports {target}, another plan's: what "
                                "plans share lives below them; run a plan by name (run.plan)"))
        elif layer == "cli" and theirs is not None and source != PLANS:
            plan = theirs.rsplit(".", 1)[1]
            if name is None or source != theirs or name != plan:
                what = source if name is None else f"{name} from {source}"
                wrong.append((line, f"{module} imports {what}: the CLI takes a plan by its "
                                    f"function ({theirs}.{plan} or puppetops.plans)"))
    return wrong


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


@pytest.mark.parametrize("module", sorted(m for m in MODULES
                                    if layer_of(m, PATTERNS) in ("plans", "cli")))
def test_plans_and_the_cli_reach_no_plan_modules_helpers(module: str) -> None:
    path, package = MODULES[module]
    wrong = cross_plan_imports(path, module, package, layer_of(module, PATTERNS))
    assert not wrong, "\n".join(f"{path.relative_to(ROOT)}:{line}: {why}" for line, why in wrong)


@pytest.mark.parametrize("module, code, flagged", [
    ("puppetops.plans.add_compiler", "from puppetops.plans.configure_lb import balance", True),
    ("puppetops.plans.add_compiler", "from .configure_lb import balance", True),
    ("puppetops.plans.add_compiler", "def f():\n    from puppetops.plans import configure_lb", True),
    ("puppetops.plans.add_compiler", "import puppetops.plans.bootstrap_ca", True),
    ("puppetops.plans.add_compiler", "from puppetops.plans.add_compiler import compiler_identity",
     False),
    ("puppetops.plans.add_compiler", "from puppetops.steps.lb.balance import balance", False),
    ("puppetops.cli.query", "from ..plans.install_puppetdb import GROUP", True),
    ("puppetops.cli.query", "import puppetops.plans.install_puppetdb", True),
    ("puppetops.cli.query", "from puppetops.plans.install_puppetdb import install_puppetdb", False),
    ("puppetops.cli.query", "from ..plans import install_puppetdb", False),
])
def test_the_check_sees_a_plan_reaching_into_another(tmp_path: Path, module: str, code: str,
                                                     flagged: bool) -> None:
    """A plan importing another plan's helpers — the way five plans once shared facts.py's —
    and the CLI importing a plan module's constant are found; a plan itself is not."""
    path = tmp_path / "x.py"
    path.write_text(code + "\n")
    found = cross_plan_imports(path, module, False, layer_of(module, PATTERNS))
    assert bool(found) is flagged, found


def test_the_check_sees_a_forbidden_import(tmp_path: Path) -> None:
    """An upward import inside a function (how the old cycles hid) is found."""
    path = tmp_path / "x.py"
    path.write_text("def f():\n    from ..steps.lb import pool\n")
    found = imports(path, "puppetops.puppet.x", False, set(MODULES))
    assert found == [(2, "puppetops.steps.lb.pool")]
    assert layer_of("puppetops.puppet.x", PATTERNS) == "puppet"
    assert "lb" not in ALLOWED["puppet"]


def plans_run_by_name() -> list[tuple[str, int, str, set[str]]]:
    """(plan file, line, plan name, keywords) for every ``run.plan("NAME", ...)`` in plans/."""
    found = []
    for path in sorted((ROOT / "plans").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) \
                    and node.func.attr == "plan" and node.args \
                    and isinstance(node.args[0], ast.Constant):
                found.append((path.name, node.lineno, node.args[0].value,
                              {k.arg for k in node.keywords if k.arg}))
    return found


def test_a_plan_runs_another_by_a_name_and_parameters_it_has() -> None:
    """Run by name, a sub-plan is not checked at import any more: its name and the keywords
    given it are checked here instead (bootstrap_ca runs setup_control_repo and
    install_puppetdb)."""
    from puppetops.plan_registry import discover
    registry = discover()
    calls = plans_run_by_name()
    assert {name for _, _, name, _ in calls} >= {"setup_control_repo", "install_puppetdb"}
    wrong = []
    for file, line, name, keywords in calls:
        if name not in registry:
            wrong.append(f"plans/{file}:{line}: {name} is no plan")
        elif keywords - set(registry[name].parameters):
            wrong.append(f"plans/{file}:{line}: {name} has no parameter "
                         f"{', '.join(sorted(keywords - set(registry[name].parameters)))}")
    assert not wrong, "\n".join(wrong)
