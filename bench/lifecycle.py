"""Lifecycle benchmark: wall time of each plan on a lab of real hosts, and where it goes.

Brings up its own lab (its own state dir, bridge and subnet, so it runs beside the default
lab) with 2 compilers and 53 agents, then times: bootstrap_ca; add_compiler on both compilers
at once; enroll_agent on 1, then 2, then 50 agents (goal: 50 ≤ 3 × 1 — parallel CSRs, one CA
signing call); deploy_code of a new commit on main alone, then of another commit on main + 2
compilers (goal: ≤ 1.3 × one server — true parallelism); rotate_lb_member over both
compilers. For each plan the slowest steps are listed ("where the time goes"). Prints a
table and writes bench/results/lifecycle.json. Takes 10–15 minutes on 2 cores.

    python bench/lifecycle.py [--agents 50] [--keep]
"""
from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import yaml
from tabulate import tabulate

from puppetops import Inventory, Run
from puppetops.lab import Lab
from puppetops.plans.add_compiler import add_compiler
from puppetops.plans.bootstrap_ca import bootstrap_ca
from puppetops.plans.deploy_code import deploy_code
from puppetops.plans.enroll_agent import enroll_agent
from puppetops.plans.rotate_lb_member import rotate_lb_member
from puppetops.puppet import code
from puppetops.steps.control_repo import ControlRepoCommit

RESULTS = Path(__file__).resolve().parent / "results"
LAB = {"state_dir": "/var/tmp/puppetops-lab-bench-lc", "subnet": "10.82.0.0/24",
       "bridge": "plbrl0"}


def commit(run: Run, text: str) -> None:
    """A new commit on production (site.pp changes), so the next deploy has work to do."""
    main = run.targets("main")[0]
    site = f'node default {{ notify {{ "{text}": }} }}\n'
    run.step(ControlRepoCommit(code.repo_on_main(main) or code.DEFAULT_REPO,
                               {"manifests/site.pp": site}, text), [main])


def timed(run: Run, label: str, work, rows: list, where: dict) -> None:
    first = len(run.steps)
    start = time.monotonic()
    results = work()
    wall = time.monotonic() - start
    ok = results.ok if hasattr(results, "ok") else True
    rows.append({"plan": label, "wall_s": round(wall, 1), "ok": ok})
    steps = sorted(((max((r.duration for r in rs), default=0), rs.name) for rs in run.steps[first:]),
                   reverse=True)[:4]
    where[label] = [f"{name} {secs:.1f}s" for secs, name in steps]
    print(f"{label}: {wall:.1f}s ok={ok}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--agents", type=int, default=50)
    parser.add_argument("--keep", action="store_true", help="leave the lab up")
    args = parser.parse_args()
    lab = Lab(**LAB)
    info = lab.up(compilers=2, agents=args.agents + 3)
    data = yaml.safe_load(Path(info.inventory).read_text())
    rows: list[dict] = []
    where: dict[str, list[str]] = {}
    try:
        with Run(Inventory.from_dict(data, path=str(info.inventory))) as run:
            agents = [t.name for t in run.targets("agents")]
            timed(run, "bootstrap_ca", lambda: bootstrap_ca(run), rows, where)
            timed(run, "add_compiler ×2", lambda: add_compiler(run, targets="compilers"), rows, where)
            timed(run, "enroll_agent ×1", lambda: enroll_agent(run, targets=agents[0]), rows, where)
            timed(run, "enroll_agent ×2", lambda: enroll_agent(run, targets=",".join(agents[1:3])),
                  rows, where)
            timed(run, f"enroll_agent ×{args.agents}",
                  lambda: enroll_agent(run, targets=",".join(agents[3:3 + args.agents])), rows, where)
            commit(run, "bench commit 1")
            timed(run, "deploy_code main only",
                  lambda: deploy_code(run, targets="main", drain=False), rows, where)
            commit(run, "bench commit 2")
            timed(run, "deploy_code main + 2 compilers", lambda: deploy_code(run), rows, where)
            timed(run, "rotate_lb_member ×2", lambda: rotate_lb_member(run), rows, where)
    finally:
        if not args.keep:
            lab.down()
    wall = {r["plan"]: r["wall_s"] for r in rows}
    goals = {
        f"enroll {args.agents} ≤ 3 × enroll 1": _ratio(wall, f"enroll_agent ×{args.agents}",
                                                      "enroll_agent ×1", 3.0),
        "deploy_code 3 servers ≤ 1.3 × one": _ratio(wall, "deploy_code main + 2 compilers",
                                                   "deploy_code main only", 1.3),
    }
    print(tabulate([(r["plan"], r["wall_s"], r["ok"], "; ".join(where[r["plan"]])) for r in rows],
                   headers=("plan", "wall s", "ok", "slowest steps")))
    for goal, verdict in goals.items():
        print(f"[{verdict}] {goal}")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "lifecycle.json").write_text(json.dumps(
        {"rows": rows, "where": where, "goals": goals, "load": os.getloadavg()}, indent=2))


def _ratio(wall: dict, big: str, small: str, limit: float) -> str:
    if big not in wall or small not in wall or not wall[small]:
        return "not measured"
    ratio = wall[big] / wall[small]
    return f"{'met' if ratio <= limit else 'NOT met'}: {ratio:.2f}×"


if __name__ == "__main__":
    main()
