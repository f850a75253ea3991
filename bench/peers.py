"""The peers' virtualenv (bench/.peers-venv): ansible-core, pyinfra, parallel-ssh and Fabric.

Kept apart from puppetops' own environment so the peers' pins (pyinfra wants paramiko < 5,
ansible-core its own Jinja) never change what puppetops runs with. Created on first use from
PyPI with pinned versions so reruns compare like with like; the folder ignores itself in git.
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

VENV = Path(__file__).resolve().parent / ".peers-venv"
PINS = ["ansible-core==2.19.14", "pyinfra==3.10.0", "parallel-ssh==2.16.0.post1", "fabric==3.2.3",
        "paramiko==4.0.0"]
_PROBE = "import ansible, pyinfra, pssh, fabric"


def ensure() -> Path:
    """The venv's bin folder, creating and installing into the venv when needed."""
    python = VENV / "bin" / "python"
    if python.exists() and subprocess.run([str(python), "-c", _PROBE],
                                          capture_output=True).returncode == 0:
        return python.parent
    print(f"creating {VENV} with {' '.join(PINS)} (once; about a minute)", flush=True)
    subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
    (VENV / ".gitignore").write_text("*\n")
    subprocess.run([str(python), "-m", "pip", "install", "--quiet", *PINS], check=True)
    return python.parent


def versions(bin_dir: Path) -> dict[str, str]:
    """Installed versions of the peers and of the SSH libraries under them."""
    code = ("import importlib.metadata as m, json; print(json.dumps({n: m.version(n) for n in "
            "['ansible-core', 'pyinfra', 'parallel-ssh', 'fabric', 'paramiko', 'gevent', "
            "'ssh2-python']}))")
    out = subprocess.run([str(bin_dir / "python"), "-c", code], capture_output=True, text=True,
                         check=True)
    return json.loads(out.stdout)
