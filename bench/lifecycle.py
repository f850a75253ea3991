"""Lifecycle benchmark: wall time of each plan on a lab of real hosts, and where it goes.

Brings up its own lab (its own state dir, bridge and subnet, so it runs beside the default
lab; any leftover of an earlier run is taken down first) with 2 compilers and N + 3 agents,
then times: bootstrap_ca; add_compiler on both compilers at once; enroll_agent on 1, then 2,
then N agents, certificates only (goal: N ≤ 3 × 1 — parallel CSRs, one CA signing call; one
run each, agents are enrolled once), then the first agent runs of 1 and of N agents;
deploy_code of a new commit on main alone and on main + 2 compilers,
alternating for R repetitions (goal: medians ≤ 1.3 × — true parallelism); rotate_lb_member
over both compilers. For each plan the slowest steps are listed ("where the time goes"), and
for deploy_code the median of every step (its slowest target) for both sizes.

Each deploy gets a commit of its own first, so r10k has work to do, and starts at least
``MUX_PERSIST`` + 1 s after the previous one (so no SSH connection of r10k's is still open
from it, as for a deploy from cron) once the box is ≥ 80 % idle or 20 s have passed. As for
the fan-out, medians and min–max are over the runs that started quiet when at least two did
(the "quiet starts" count says how many; lifecycle.json has every run).

    python bench/lifecycle.py [--agents 50] [--reps 5] [--keep]
                              [--lab-dir DIR --subnet CIDR --bridge NAME]

(`invoke bench --only lifecycle [--agents N] [--reps R]` runs this through run_all.py.) The
lab defaults can also come from PUPPETOPS_BENCH_LAB_DIR, _SUBNET and _BRIDGE. Prints tables
and writes bench/results/lifecycle.json. Needs root; about 4.5 minutes with 50 agents on 2 cores.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Callable

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(1, str(Path(__file__).resolve().parents[1]))

import harness  # noqa: E402
import report  # noqa: E402

from puppetops import Inventory, Run  # noqa: E402
from puppetops.lab import Lab  # noqa: E402
from puppetops.plans.add_compiler import add_compiler  # noqa: E402
from puppetops.plans.bootstrap_ca import bootstrap_ca  # noqa: E402
from puppetops.plans.deploy_code import deploy_code  # noqa: E402
from puppetops.plans.enroll_agent import enroll_agent  # noqa: E402
from puppetops.plans.rotate_lb_member import rotate_lb_member  # noqa: E402
from puppetops.steps.code import provision  # noqa: E402
from puppetops.steps.code.control_repo import ControlRepoCommit  # noqa: E402
from puppetops.steps.code.r10k import MUX_PERSIST  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
LAB = {"state_dir": os.environ.get("PUPPETOPS_BENCH_LAB_DIR", "/var/tmp/puppetops-lab-bench-lc"),
       "subnet": os.environ.get("PUPPETOPS_BENCH_LAB_SUBNET", "10.82.0.0/24"),
       "bridge": os.environ.get("PUPPETOPS_BENCH_LAB_BRIDGE", "plbrl0")}
ONE, THREE = report.DEPLOY_ONE, report.DEPLOY_THREE
DEFAULT_AGENTS, DEFAULT_REPS = 50, 5


def commit(run: Run, text: str) -> None:
    """A new commit on production (site.pp changes), so the next deploy has work to do."""
    main = run.targets("main")[0]
    site = f'node default {{ notify {{ "{text}": }} }}\n'
    run.step(ControlRepoCommit(provision.repo_on_main(main) or provision.DEFAULT_REPO,
                               {"manifests/site.pp": site}, text), [main])


def _slowest(sets) -> dict[str, float]:
    """step name → its slowest target's seconds (a step run twice counts twice)."""
    out: dict[str, float] = {}
    for rs in sets:
        out[rs.name] = out.get(rs.name, 0.0) + max((r.duration for r in rs), default=0.0)
    return out


def timed(run: Run, label: str, work: Callable, rows: list, where: dict) -> None:
    """One run of a plan: its wall time and its four slowest steps."""
    first = len(run.steps)
    start = time.monotonic()
    results = work()
    wall = time.monotonic() - start
    ok = results.ok if hasattr(results, "ok") else True
    rows.append({"plan": label, "wall_s": round(wall, 2), "reps": 1, "ok": ok})
    steps = sorted(((secs, name) for name, secs in _slowest(run.steps[first:]).items()),
                   reverse=True)[:4]
    where[label] = [f"{name} {secs:.1f}s" for secs, name in steps]
    print(f"{label}: {wall:.1f}s ok={ok}", flush=True)
    for failed in (results.error_set if hasattr(results, "error_set") else []):
        print(f"  {failed.target}: {failed.status}: {failed.message}", flush=True)


def deploy_reps(run: Run, reps: int, log: Callable[[str], None] = print) -> dict:
    """deploy_code on main alone and on main + 2 compilers, alternating (which goes first
    alternates too), ``reps`` times each; per run: wall, machine CPU, idle share at its start,
    and every step's slowest target."""
    out: dict[str, dict] = {ONE: {"runs": []}, THREE: {"runs": []}}
    plans = {ONE: lambda: deploy_code(run, targets="main", drain=False),
             THREE: lambda: deploy_code(run)}
    last = 0.0
    for rep in range(reps):
        for label in ((ONE, THREE) if rep % 2 == 0 else (THREE, ONE)):
            commit(run, f"bench commit {rep} {label} {time.time():.0f}")
            time.sleep(max(0.0, last + MUX_PERSIST + 1 - time.monotonic()))
            idle = harness.wait_quiet(max_wait=20.0)
            first = len(run.steps)
            busy0, _ = harness.busy_jiffies()
            start = time.monotonic()
            results = plans[label]()
            wall = time.monotonic() - start
            last = time.monotonic()
            busy1, _ = harness.busy_jiffies()
            out[label]["runs"].append({
                "wall_s": round(wall, 3), "ok": results.ok, "idle_before": round(idle, 2),
                "mach_cpu_s": round(harness.jiffies_to_seconds(busy1 - busy0), 2),
                "steps": {k: round(v, 3) for k, v in _slowest(run.steps[first:]).items()}})
            log(f"  {label} rep {rep + 1}/{reps}: {wall:.2f}s ok={results.ok} "
                f"idle before {idle:.0%}")
    for data in out.values():
        # as the fan-out medians: over the runs that started on a quiet box, if at least two did
        quiet = [r for r in data["runs"] if r["idle_before"] >= report.QUIET]
        runs = quiet if len(quiet) >= 2 else data["runs"]
        walls = [r["wall_s"] for r in runs]
        names = dict.fromkeys(n for r in runs for n in r["steps"])
        data.update(median_s=round(statistics.median(walls), 3), min_s=min(walls),
                    max_s=max(walls), ok=all(r["ok"] for r in data["runs"]),
                    quiet_starts=len(quiet), used=len(runs),
                    mach_cpu_s=round(statistics.median(r["mach_cpu_s"] for r in runs), 2),
                    steps={n: round(statistics.median(r["steps"].get(n, 0.0) for r in runs), 3)
                           for n in names})
    return out


def run(agents: int = DEFAULT_AGENTS, reps: int = DEFAULT_REPS, keep: bool = False,
        lab: dict | None = None, deployer: str = "r10k") -> dict:
    """The whole benchmark; returns what lifecycle.json holds. ``deployer``: the servers'
    code_deployer (r10k or g10k)."""
    lab_ = Lab(**(lab or LAB))
    lab_.down()  # a leftover of an interrupted run would make the stand-up plans no-ops
    started, load_before = time.monotonic(), harness.load()
    info = lab_.up(compilers=2, agents=agents + 3)
    data = yaml.safe_load(Path(info.inventory).read_text())
    data.setdefault("vars", {})["code_deployer"] = deployer
    rows: list[dict] = []
    where: dict[str, list[str]] = {}
    deploy: dict = {}
    try:
        with Run(Inventory.from_dict(data, path=str(info.inventory))) as r:
            names = [t.name for t in r.targets("agents")]
            timed(r, "bootstrap_ca", lambda: bootstrap_ca(r), rows, where)
            timed(r, "add_compiler ×2", lambda: add_compiler(r, targets="compilers"), rows, where)
            # enrolment proper (certificates), then the first agent runs on their own: on this
            # box the agents' Ruby shares the same two cores, which says nothing of enrolment
            one, two, many = names[0], ",".join(names[1:3]), ",".join(names[3:3 + agents])
            for label, chosen in (("×1", one), ("×2", two), (f"×{agents}", many)):
                timed(r, f"enroll_agent {label}",
                      lambda: enroll_agent(r, targets=chosen, first_run=False), rows, where)
            for label, chosen in (("×1", one), (f"×{agents}", many)):
                timed(r, f"first agent run {label}",
                      lambda: enroll_agent(r, targets=chosen), rows, where)
            print(f"deploy_code: {reps} repetition(s) of each, alternating", flush=True)
            deploy = deploy_reps(r, reps)
            for label, d in deploy.items():
                rows.append({"plan": label, "wall_s": d["median_s"], "min_s": d["min_s"],
                             "max_s": d["max_s"], "reps": reps, "ok": d["ok"],
                             "quiet_starts": d["quiet_starts"]})
                top = sorted(((s, n) for n, s in d["steps"].items()), reverse=True)[:4]
                where[label] = [f"{n} {s:.2f}s" for s, n in top]
            timed(r, "rotate_lb_member ×2", lambda: rotate_lb_member(r), rows, where)
    finally:
        if not keep:
            lab_.down()
    return {"agents": agents, "reps": reps, "deployer": deployer, "rows": rows, "where": where, "deploy": deploy,
            "goals": report.lifecycle_goals(rows, agents), "load_before": load_before, "load_after": harness.load(),
            "seconds": round(time.monotonic() - started)}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--agents", type=int, default=DEFAULT_AGENTS,
                        help=f"agents in the big enrolment (default {DEFAULT_AGENTS})")
    parser.add_argument("--reps", type=int, default=DEFAULT_REPS,
                        help=f"deploy_code repetitions per size (default {DEFAULT_REPS})")
    parser.add_argument("--deployer", choices=("r10k", "g10k"), default="r10k",
                        help="the servers' code_deployer (default r10k)")
    parser.add_argument("--keep", action="store_true", help="leave the lab up")
    parser.add_argument("--lab-dir", default=LAB["state_dir"])
    parser.add_argument("--subnet", default=LAB["subnet"])
    parser.add_argument("--bridge", default=LAB["bridge"])
    args = parser.parse_args(argv)
    if args.agents < 1 or args.reps < 1:
        parser.error("--agents and --reps must be at least 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    data = run(args.agents, args.reps, args.keep,
               {"state_dir": args.lab_dir, "subnet": args.subnet, "bridge": args.bridge},
               args.deployer)
    print("\n" + report.lifecycle_table(data, "simple") + "\n\n"
          + report.lifecycle_steps_table(data, "simple") + "\n")
    print("\n".join(data["goals"]))
    RESULTS.mkdir(exist_ok=True)
    name = "lifecycle.json" if args.deployer == "r10k" else f"lifecycle-{args.deployer}.json"
    (RESULTS / name).write_text(json.dumps(dict(data, machine=harness.machine_info()),
                                                       indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
