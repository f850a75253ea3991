"""``puppetops status`` on a fleet of loopback hosts against one SSH fan-out of ``true``.

Status must be one round of parallel reads — one remote script per host — so it should cost
about what a fan-out of ``true`` to the same hosts costs (goal: ≤ 1.5 ×). The fleet is an
SshdFleet on 127.0.1.x, grouped like an infrastructure: host1 main, host2-4 compilers, host5
a load balancer, the others agents. Nothing Puppet runs there, so each host runs its whole
script (Puppet Server's status API, deploy records, the CA, HAProxy's socket, the agent's
summary, for both package layouts' paths) and the reads answer "connection refused" or
"absent" at once: the work measured is puppetops', SSH's and the scripts', not a JVM's.

Both are the CLI as an operator runs it (fresh process, ``--format json``), alternating,
each after the box is quiet (or 10 s), ``--reps`` times; medians.

    python bench/status_bench.py [--hosts 200] [--reps 5]

Prints a table; writes bench/results/status.json.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(1, str(Path(__file__).resolve().parents[1]))

import harness  # noqa: E402
from tabulate import tabulate  # noqa: E402

from puppetops.testing.sshd import SshdFleet  # noqa: E402

BENCH = Path(__file__).resolve().parent
RESULTS = BENCH / "results"
GOAL = 1.5


def grouped(fleet: SshdFleet) -> dict:
    """The fleet's inventory with the roles of an infrastructure."""
    data = fleet.inventory_dict()
    targets = data["groups"][0]["targets"]
    data["groups"] = [{"name": "main", "targets": targets[:1]},
                      {"name": "compilers", "targets": targets[1:4]},
                      {"name": "loadbalancers", "targets": targets[4:5]},
                      {"name": "agents", "targets": targets[5:]}]
    return data


def measure(argv: list[str], hosts: int) -> dict:
    idle = harness.wait_quiet()
    sample = harness.run_measured(argv, env=dict(os.environ, PYTHONPATH=str(BENCH.parent)),
                                  timeout=120 + hosts)
    doc = json.loads(sample.stdout)
    reached = sum(r["status"] == "ok" for s in doc["steps"] for r in s["results"])
    if reached != hosts:
        raise RuntimeError(f"{argv[3]} reached {reached}/{hosts} hosts: {sample.tail()}")
    return {"wall": sample.wall, "ctrl_cpu": sample.ctrl_cpu, "mach_cpu": sample.mach_cpu,
            "idle_before": round(idle, 2), "run": doc["duration"], "rc": sample.rc}


def run(hosts: int, reps: int, log=print) -> dict:
    with tempfile.TemporaryDirectory(prefix="puppetops-status-bench-") as folder:
        workdir = Path(folder)
        fleet = SshdFleet(workdir / "fleet", count=hosts, port=None)
        fleet.start()
        try:
            inventory = workdir / "inventory.yaml"
            inventory.write_text(yaml.safe_dump(grouped(fleet), sort_keys=False))
            base = [sys.executable, "-m", "puppetops"]
            commands = {"status": [*base, "status", "-i", str(inventory), "-f", "json"],
                        "true": [*base, "command", "true", "-t", "all", "-i", str(inventory),
                                 "-f", "json"]}
            runs: dict[str, list[dict]] = {name: [] for name in commands}
            for rep in range(reps):
                for name in (("status", "true") if rep % 2 == 0 else ("true", "status")):
                    record = measure(commands[name], hosts)
                    runs[name].append(record)
                    log(f"  {name:<6} rep {rep}: {record['wall']:.2f} s wall, run "
                        f"{record['run']:.2f} s, controller CPU {record['ctrl_cpu']:.2f} s "
                        f"(idle before {record['idle_before']:.0%})")
        finally:
            fleet.stop()
    medians = {name: {key: statistics.median(r[key] for r in records)
                      for key in ("wall", "run", "ctrl_cpu", "mach_cpu")}
               for name, records in runs.items()}
    ratio = medians["status"]["wall"] / medians["true"]["wall"]
    return {"hosts": hosts, "reps": reps, "runs": runs, "medians": medians,
            "ratio": round(ratio, 2), "goal": GOAL, "met": ratio <= GOAL}


def table(result: dict) -> str:
    rows = [(name, f"{m['wall']:.2f}", f"{m['run']:.2f}", f"{m['ctrl_cpu']:.2f}",
             f"{m['mach_cpu']:.2f}") for name, m in result["medians"].items()]
    return tabulate(rows, headers=(f"N={result['hosts']}", "wall s", "run s",
                                   "controller CPU s", "machine CPU s")) + \
        f"\n\nstatus / fan-out of true: {result['ratio']:.2f} × (goal ≤ {GOAL} ×: " \
        f"{'met' if result['met'] else 'NOT met'})"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--hosts", type=int, default=200)
    parser.add_argument("--reps", type=int, default=5)
    args = parser.parse_args()
    print(f"load {harness.load()}; {args.hosts} sshd hosts on loopback, {args.reps} reps",
          flush=True)
    result = run(args.hosts, args.reps)
    result["machine"] = harness.machine_info()
    print("\n" + table(result))
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "status.json").write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
