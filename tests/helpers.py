"""Small helpers shared by the core tests."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from puppetops import Inventory, Run

REPO = Path(__file__).resolve().parent.parent


def install_wheel(tmp_path: Path, python: str = sys.executable) -> Path:
    """Build puppetops' wheel and install it (with its dependencies) in a new virtualenv made
    by ``python`` under ``tmp_path``; returns the virtualenv."""
    # from a copy without build/: setuptools keeps modules deleted from the source in build/lib
    # and would ship them
    source = tmp_path / "source"
    shutil.copytree(REPO, source, ignore=shutil.ignore_patterns(
        ".git", ".venv", "build", "dist", "*.egg-info", "__pycache__", ".puppetops", "results",
        ".peers-venv"))
    dist = tmp_path / "dist"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                    "-w", str(dist), str(source)], check=True, capture_output=True)
    wheel = next(dist.glob("puppetops-*.whl"))
    env_dir = tmp_path / "venv"
    subprocess.run([python, "-m", "venv", str(env_dir)], check=True, capture_output=True)
    subprocess.run([str(env_dir / "bin" / "python"), "-m", "pip", "install", "-q", str(wheel)],
                   check=True, capture_output=True)
    return env_dir


def fleet_run(fleet, **kwargs) -> Run:
    """A Run against an SshdFleet's hosts, with quick retries so fault tests stay short."""
    extra = kwargs.pop("extra_config", None)
    kwargs.setdefault("backoff", 0.2)
    return Run(Inventory.from_dict(fleet.inventory_dict(extra_config=extra)), **kwargs)


def cli(*args: str, cwd: Path | None = None, env: dict | None = None, timeout: float = 120):
    """Run the `puppetops` console script (same collection as tasks.py)."""
    full_env = dict(os.environ, **(env or {}))
    return subprocess.run([sys.executable, "-m", "puppetops", *args], cwd=cwd or REPO,
                          capture_output=True, text=True, env=full_env, timeout=timeout)
