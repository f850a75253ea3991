"""Small helpers shared by the core tests."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from puppetops import Inventory, Run

REPO = Path(__file__).resolve().parent.parent


def build_wheel(folder: Path) -> Path:
    """puppetops' wheel, built into ``folder`` (the tests share one: see ``wheel`` in
    tests/conftest.py)."""
    # from a copy without build/: setuptools keeps modules deleted from the source in build/lib
    # and would ship them
    source = folder / "source"
    shutil.copytree(REPO, source, ignore=shutil.ignore_patterns(
        ".git", ".venv", "build", "dist", "*.egg-info", "__pycache__", ".puppetops", "results",
        ".peers-venv"))
    dist = folder / "dist"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                    "-w", str(dist), str(source)], check=True, capture_output=True)
    return next(dist.glob("puppetops-*.whl"))


def install_wheel(wheel: Path, tmp_path: Path, python: str = sys.executable) -> Path:
    """A new virtualenv made by ``python`` under ``tmp_path`` with ``wheel`` and its
    dependencies installed; returns the virtualenv."""
    env_dir = tmp_path / "venv"
    # No pip of its own (ensurepip costs seconds of CPU per venv): this pip installs into it,
    # running under the venv's interpreter, so dependencies resolve for that Python.
    subprocess.run([python, "-m", "venv", "--without-pip", str(env_dir)], check=True,
                   capture_output=True)
    subprocess.run([sys.executable, "-m", "pip", "--python", str(env_dir / "bin" / "python"),
                    "install", "-q", str(wheel)], check=True, capture_output=True)
    return env_dir


def fleet_run(fleet, **kwargs) -> Run:
    """A Run against an SshdFleet's hosts, with quick retries so fault tests stay short."""
    extra = kwargs.pop("extra_config", None)
    kwargs.setdefault("backoff", 0.2)
    return Run(Inventory.from_dict(fleet.inventory_dict(extra_config=extra)), **kwargs)


def local_run(count: int = 4, **kwargs) -> Run:
    """A Run on ``count`` targets of the local transport (real processes, no SSH), without the
    run lock: every local target is this machine's one lock (``host_key`` "local"), which other
    tests and other test sessions on this box take too; these runs test the executor, not it."""
    inv = Inventory.from_dict({"targets": [{"name": f"l{i}", "uri": f"local://l{i}"}
                                           for i in range(count)]})
    kwargs.setdefault("backoff", 0.05)
    return Run(inv, lock=False, **kwargs)


def cli(*args: str, cwd: Path | None = None, env: dict | None = None, timeout: float = 120):
    """Run the `puppetops` console script (same collection as tasks.py)."""
    full_env = dict(os.environ, **(env or {}))
    return subprocess.run([sys.executable, "-m", "puppetops", *args], cwd=cwd or REPO,
                          capture_output=True, text=True, env=full_env, timeout=timeout)
