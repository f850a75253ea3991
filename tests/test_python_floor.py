"""The Python floor that setup.cfg declares (``python_requires``) is true.

The code parses at the floor's grammar, and, when the floor is older than the Python running the
suite, an installed wheel on the floor's own interpreter imports every module, evaluates every
annotation it can resolve (``X | Y`` in evaluated annotations needs 3.10) and runs a plan.
"""
from __future__ import annotations

import ast
import configparser
import glob
import json
import os
import re
import shutil
import subprocess
import sys

import pytest

from helpers import REPO, install_wheel


def declared_floor() -> tuple[int, int]:
    config = configparser.ConfigParser()
    config.read(REPO / "setup.cfg")
    spec = config["options"]["python_requires"].strip()
    found = re.fullmatch(r">=\s*3\.(\d+)", spec)
    assert found, f"setup.cfg: python_requires = {spec!r}; expected a plain floor like '>=3.10'"
    return 3, int(found.group(1))


FLOOR = declared_floor()


def sources() -> list:
    return sorted([*REPO.glob("puppetops/**/*.py"), *REPO.glob("plans/*.py"), REPO / "tasks.py"])


def test_this_python_is_at_or_above_the_floor():
    assert sys.version_info[:2] >= FLOOR


def test_every_module_parses_with_the_floor_grammar():
    errors = []
    for path in sources():
        try:
            ast.parse(path.read_text(), str(path), feature_version=FLOOR)
        except SyntaxError as exc:
            errors.append(f"{path.relative_to(REPO)}:{exc.lineno}: {exc.msg}")
    assert errors == [], f"syntax newer than Python {FLOOR[0]}.{FLOOR[1]} (setup.cfg python_requires)"


# Run by the floor's interpreter in a virtualenv holding only the installed wheel: every
# module imports, and every annotation of a module-level function or class (and its methods)
# that names something importable evaluates, as get_type_hints (plan parameters) does.
CHECK = r"""
import importlib, inspect, json, pkgutil, typing
import puppetops, puppetops.plans
failures, evaluated = [], 0
for package in (puppetops, puppetops.plans):
    for info in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
        if info.name.endswith("__main__"):
            continue
        try:
            module = importlib.import_module(info.name)
        except ModuleNotFoundError as exc:
            if exc.name == "pytest":  # a pytest plugin (testing/fixtures.py): the test extra
                continue
            raise
        for obj in list(vars(module).values()):
            if getattr(obj, "__module__", None) != module.__name__:
                continue
            if not (inspect.isfunction(obj) or inspect.isclass(obj)):
                continue
            members = [obj] + ([m for m in vars(obj).values() if inspect.isfunction(m)]
                               if inspect.isclass(obj) else [])
            for member in members:
                try:
                    typing.get_type_hints(member)
                    evaluated += 1
                except NameError:  # a name imported only for type checkers
                    pass
                except Exception as exc:
                    failures.append(f"{info.name}.{member.__qualname__}: {exc!r}")
print(json.dumps({"evaluated": evaluated, "failures": failures}))
"""


def floor_interpreter() -> str | None:
    """An interpreter of exactly the floor version: pythonX.Y on PATH or a pyenv install."""
    version = f"{FLOOR[0]}.{FLOOR[1]}"
    pyenv_root = os.environ.get("PYENV_ROOT", os.path.expanduser("~/.pyenv"))
    candidates = sorted(glob.glob(f"{pyenv_root}/versions/{version}.*/bin/python{version}"), reverse=True)
    candidates += [c for c in [shutil.which(f"python{version}")] if c]
    for candidate in candidates:
        probe = subprocess.run([candidate, "-c", "import sys, venv; print(sys.version_info[:2])"],
                               capture_output=True, text=True)
        if probe.returncode == 0 and probe.stdout.strip() == str(FLOOR):
            return candidate
    return None


@pytest.mark.slow
@pytest.mark.serial("the local transport's run lock: runs a plan on localhost")
def test_an_installed_wheel_imports_and_runs_a_plan_on_the_floor_python(wheel, tmp_path):
    if sys.version_info[:2] == FLOOR:
        pytest.skip("this interpreter is the floor: the whole suite runs on it")
    python = floor_interpreter()
    if python is None:
        pytest.skip(f"no Python {FLOOR[0]}.{FLOOR[1]} interpreter on this machine (PATH or pyenv)")
    env_dir = install_wheel(wheel, tmp_path, python)
    # outside the source tree, so only the installed copy can be imported
    checked = subprocess.run([str(env_dir / "bin" / "python"), "-c", CHECK], cwd=tmp_path,
                             capture_output=True, text=True)
    assert checked.returncode == 0, checked.stderr
    report = json.loads(checked.stdout)
    assert report["failures"] == [] and report["evaluated"] > 100, report
    inventory = tmp_path / "inventory.yaml"
    inventory.write_text("targets:\n  - name: localhost\n")
    ran = subprocess.run([str(env_dir / "bin" / "puppetops"), "plan", "facts", "targets=localhost",
                          "-i", str(inventory), "--format", "json"], cwd=tmp_path, capture_output=True, text=True)
    assert ran.returncode == 0, ran.stderr
    assert json.loads(ran.stdout)["ok"]
