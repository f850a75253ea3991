"""``invoke bench``: the fan-out, reuse and inventory benchmarks in bench/ (a source checkout only).

The benchmarks live outside the package (they need the peers' venv, sshd and minutes of
machine time), so this task only finds bench/run_all.py next to the package and runs it with
the same Python; importing this module stays free for every other command.
"""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from invoke import task
from invoke.exceptions import Exit

RUN_ALL = Path(__file__).resolve().parents[2] / "bench" / "run_all.py"


@task(help={
    "quick": "N = 10 and 50 only, 1 repetition (about a minute)",
    "sizes": "comma-separated host counts (default 10,50,200)",
    "reps": "repetitions per measurement (default 3)",
    "tools": "comma-separated subset: puppetops,pyinfra,fabric,parallel-ssh,ansible,ssh-xargs,"
             "ssh-xargs-c25519",
    "only": "fanout, reuse or inventory (default: all three)",
})
def bench(c, quick=False, sizes=None, reps=None, tools=None, only=None):
    """Benchmark fan-out against ansible/pyinfra/Fabric/parallel-ssh/OpenSSH on a loopback sshd
    fleet, connection reuse and inventory resolution; prints tables, writes bench/results/."""
    if not RUN_ALL.exists():
        raise Exit(f"error: {RUN_ALL} not found: `invoke bench` needs a puppetops source checkout",
                   code=2)
    argv = [sys.executable, str(RUN_ALL)]
    argv += ["--quick"] if quick else []
    for flag, value in (("--sizes", sizes), ("--reps", reps), ("--tools", tools), ("--only", only)):
        if value is not None:
            argv += [flag, str(value)]
    code = subprocess.run(argv).returncode
    if code:
        raise Exit(code=code)
