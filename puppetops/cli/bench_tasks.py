"""``invoke bench``: the fan-out, reuse, inventory and lifecycle benchmarks in bench/ (a source
checkout only).

The benchmarks live outside the package (they need the peers' venv, sshd, a lab of real hosts
and minutes of machine time), so this task only finds bench/run_all.py next to the package and
runs it with the same Python; importing this module stays free for every other command.
"""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from invoke import task
from invoke.exceptions import Exit
from .parsing import PuppetopsTask

RUN_ALL = Path(__file__).resolve().parents[2] / "bench" / "run_all.py"


@task(klass=PuppetopsTask, help={
    "quick": "N = 10 and 50 only, 1 repetition, no lifecycle (about a minute)",
    "sizes": "comma-separated host counts (default 10,50,200)",
    "reps": "repetitions per measurement (default 3; lifecycle: deploy_code runs per size, "
            "default 5)",
    "tools": "comma-separated subset: puppetops,pyinfra,fabric,parallel-ssh,ansible,ssh-xargs,"
             "ssh-xargs-c25519",
    "only": "fanout, reuse, inventory, lifecycle or webhook (default: all; --quick: all but "
            "lifecycle)",
    "agents": "lifecycle: agents enrolled at once in the big enrolment (default 50)",
})
def bench(c, quick=False, sizes=None, reps=None, tools=None, only=None, agents=None):
    """Benchmark fan-out against ansible/pyinfra/Fabric/parallel-ssh/OpenSSH on a loopback sshd
    fleet, connection reuse, inventory resolution, and the lifecycle plans on a lab of real
    hosts (root; bench/lifecycle.py); prints tables, writes bench/results/."""
    if not RUN_ALL.exists():
        raise Exit(f"error: {RUN_ALL} not found: `invoke bench` needs a puppetops source checkout",
                   code=2)
    argv = [sys.executable, str(RUN_ALL)]
    argv += ["--quick"] if quick else []
    for flag, value in (("--sizes", sizes), ("--reps", reps), ("--tools", tools), ("--only", only),
                        ("--agents", agents)):
        if value is not None:
            argv += [flag, str(value)]
    code = subprocess.run(argv).returncode
    if code:
        raise Exit(code=code)
