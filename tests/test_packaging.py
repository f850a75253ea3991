"""The wheel: `plans/` ships as `puppetops.plans`, and the console script runs a plan from it."""
from __future__ import annotations

import json
import subprocess

import pytest

from helpers import REPO, install_wheel

INSTALLED_PACKAGES = ("import pkgutil, puppetops; print('\\n'.join(sorted(m.name for m in "
                      "pkgutil.walk_packages(puppetops.__path__, 'puppetops.') if m.ispkg)))")


PAGE_FILES = ("from importlib import resources; print('\\n'.join(sorted(f.name for f in resources."
              "files('puppetops.webhook').joinpath('static').iterdir())))")


def source_packages() -> list[str]:
    """Every package of the source tree, as installed (``plans/`` is ``puppetops.plans``)."""
    found = ["puppetops.plans"] + [
        ".".join(init.parent.relative_to(REPO).parts)
        for init in (REPO / "puppetops").rglob("__init__.py") if init.parent != REPO / "puppetops"]
    return sorted(found)


@pytest.mark.slow
@pytest.mark.serial("the local transport's run lock: runs a plan on localhost")
def test_an_installed_wheel_runs_a_plan_from_puppetops_plans(wheel, tmp_path):
    env_dir = install_wheel(wheel, tmp_path)
    py = env_dir / "bin" / "python"
    inventory = tmp_path / "inventory.yaml"
    inventory.write_text("targets:\n  - name: localhost\n")
    # run from a folder without the source tree, so only the installed copy can be imported
    module_file = "import importlib; print(importlib.import_module('puppetops.plans.facts').__file__)"
    where = subprocess.run([str(py), "-c", module_file],
                           cwd=tmp_path, capture_output=True, text=True, check=True)
    assert str(env_dir) in where.stdout
    # every package ships (setup.cfg lists them: a new one missing there is missing here)
    installed = subprocess.run([str(py), "-c", INSTALLED_PACKAGES], cwd=tmp_path,
                               capture_output=True, text=True, check=True).stdout.split()
    assert installed == source_packages()
    # and their data: the webhook's status page (setup.cfg's package_data)
    page = subprocess.run([str(py), "-c", PAGE_FILES], cwd=tmp_path, capture_output=True,
                          text=True, check=True).stdout.split()
    assert page == ["status.css", "status.html", "status.js"]
    proc = subprocess.run([str(env_dir / "bin" / "puppetops"), "plan", "facts",
                           "targets=localhost", "-i", str(inventory), "--format", "json"],
                          cwd=tmp_path, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["ok"] and doc["plans"][0]["name"] == "facts"
    assert doc["steps"][0]["results"][0]["value"]["os_id"]
    listed = subprocess.run([str(env_dir / "bin" / "puppetops"), "--list"], cwd=tmp_path,
                            capture_output=True, text=True)
    assert "plan" in listed.stdout and "inventory" in listed.stdout
