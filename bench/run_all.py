"""All puppetops benchmarks: fan-out, connection reuse, inventory resolution, lab lifecycle.

Fan-out against the peers, connection reuse, inventory resolution, and the lifecycle plans on
a lab of real hosts:

    python bench/run_all.py            # everything: N = 10, 50, 200; 3 repetitions; lifecycle
                                       # with 50 agents, deploy_code 5 + 5 runs (about 25 minutes)
    python bench/run_all.py --quick    # N = 10, 50; 1 repetition; no lifecycle (about 1.5 minutes)
    python bench/run_all.py --only lifecycle --agents 3 --reps 5

(`invoke bench [--quick]` runs this.) Starts one SshdFleet on loopback for the largest N,
creates the peers' venv on first use, brings up (and takes down) its own lab for the lifecycle
part (bench/lifecycle.py: needs root and the lab's packages, `invoke lab-setup`), prints the
tables and the goal checks, and writes bench/results/{fanout,reuse,inventory,lifecycle}.json
and bench/results/tables.md.
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(1, str(Path(__file__).resolve().parents[1]))

import fanout  # noqa: E402
import harness  # noqa: E402
import inventory_bench  # noqa: E402
import lifecycle  # noqa: E402
import peers  # noqa: E402
import report  # noqa: E402
import reuse  # noqa: E402
import webhook_bench  # noqa: E402
from tools import TOOLS, Context  # noqa: E402

from puppetops.testing.sshd import SshdFleet  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
PARTS = ["fanout", "reuse", "inventory", "lifecycle", "webhook"]


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="N = 10, 50 and 1 repetition; no lifecycle")
    parser.add_argument("--sizes", help="comma-separated host counts (default 10,50,200)")
    parser.add_argument("--reps", type=int, help="repetitions (default 3, --quick 1; lifecycle: "
                        f"deploy_code runs per size, default {lifecycle.DEFAULT_REPS})")
    parser.add_argument("--tools", help=f"comma-separated subset of: {','.join(t.name for t in TOOLS)}")
    parser.add_argument("--agents", type=int, default=lifecycle.DEFAULT_AGENTS,
                        help=f"lifecycle: agents in the big enrolment (default "
                             f"{lifecycle.DEFAULT_AGENTS})")
    parser.add_argument("--only", choices=PARTS, action="append",
                        help="run only these parts (repeatable; default all, --quick: all but "
                             "lifecycle)")
    args = parser.parse_args(argv)
    if (args.reps is not None and args.reps < 1) or args.agents < 1:
        parser.error("--reps and --agents must be at least 1")
    args.sizes = [int(s) for s in args.sizes.split(",")] if args.sizes else (
        [10, 50] if args.quick else [10, 50, 200])
    args.lifecycle_reps = args.reps or lifecycle.DEFAULT_REPS
    args.reps = args.reps or (1 if args.quick else 3)
    args.only = set(args.only or [p for p in PARTS if not (args.quick and p == "lifecycle")])
    wanted = set(args.tools.split(",")) if args.tools else None
    args.tools = [t for t in TOOLS if wanted is None or t.name in wanted]
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    machine = harness.machine_info()
    machine["idle_share_before"] = round(harness.idle_share(), 2)
    print(f"machine: {machine['nproc']} x {machine['cpu_model']}, kernel {machine['kernel']}, "
          f"load {machine['loadavg']}, idle {machine['idle_share_before']:.0%}", flush=True)
    RESULTS.mkdir(exist_ok=True)
    workdir = Path(tempfile.mkdtemp(prefix="puppetops-bench-"))
    started = time.monotonic()
    try:
        out = run_parts(args, machine, workdir)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    machine["loadavg_after"] = harness.load()
    print(f"\nload after: {machine['loadavg_after']}; bench took {time.monotonic() - started:.0f} s")
    goals = []
    if "fanout" in out:
        goals += report.fanout_goals(out["fanout"]["rows"])
    if "reuse" in out:
        goals += report.reuse_goals(out["reuse"])
    if "inventory" in out:
        goals += report.inventory_goals(out["inventory"])
    if "lifecycle" in out:
        goals += out["lifecycle"]["goals"]
    if "webhook" in out:
        goals.append(webhook_bench.goal(out["webhook"]["runs"][0]))
    print("\n" + "\n".join(goals))
    for name, data in out.items():
        (RESULTS / f"{name}.json").write_text(json.dumps(dict(data, machine=machine), indent=1))
    (RESULTS / "tables.md").write_text(tables_markdown(out, machine, goals))
    print(f"\nwrote {', '.join(str(RESULTS / f'{n}.json') for n in out)} and {RESULTS / 'tables.md'}")
    return 0


def run_parts(args: argparse.Namespace, machine: dict, workdir: Path) -> dict:
    out: dict = {}
    if "inventory" in args.only:
        print("\n== inventory: 1,000 targets", flush=True)
        out["inventory"] = inventory_bench.run(workdir)
        print(f"  {out['inventory']}")
    if args.only & {"fanout", "reuse"}:
        run_fleet(args, machine, workdir, out)
    if "webhook" in args.only:
        print("\n== webhook: signed pushes accepted per second, deploys stubbed", flush=True)
        out["webhook"] = {"runs": [webhook_bench.run(deploy_seconds=s) for s in (1.0, 0.0)]}
        print("\n" + webhook_bench.table(out["webhook"]["runs"]))
    if "lifecycle" in args.only:
        print(f"\n== lifecycle: lab with 2 compilers, {args.agents} + 3 agents; deploy_code "
              f"{args.lifecycle_reps} + {args.lifecycle_reps} runs", flush=True)
        out["lifecycle"] = lifecycle.run(args.agents, args.lifecycle_reps)
        print("\n" + report.lifecycle_table(out["lifecycle"], "simple") + "\n\n"
              + report.lifecycle_steps_table(out["lifecycle"], "simple"))
    return out


def run_fleet(args: argparse.Namespace, machine: dict, workdir: Path, out: dict) -> None:
    """The fan-out and reuse parts, on one sshd fleet."""
    peers_bin = peers.ensure()
    machine["peers"] = peers.versions(peers_bin)
    count = max(args.sizes)
    print(f"\nstarting {count} sshd daemons on 127.0.1.x ...", flush=True)
    fleet = SshdFleet(workdir / "fleet", count=count, port=None)
    fleet.start()
    try:
        ctx = Context.from_fleet(fleet, workdir, peers_bin)
        if "fanout" in args.only:
            print(f"\n== fan-out: N={args.sizes}, {args.reps} rep(s), "
                  f"{len(args.tools)} tools", flush=True)
            records = fanout.run(ctx, fleet, args.sizes, args.reps, args.tools,
                                 log=lambda line: print(line, flush=True))
            rows = report.summarise(records)
            print("\n" + report.fanout_table(rows, "simple"))
            out["fanout"] = {"records": records, "rows": rows,
                             "tools": {t.name: {"note": t.note, "host_key_check": t.host_key_check}
                                       for t in args.tools}}
        if "reuse" in args.only:
            print(f"\n== reuse: 5 steps on {count} hosts, {args.reps} rep(s)", flush=True)
            out["reuse"] = reuse.run(ctx, fleet, count, args.reps,
                                     log=lambda line: print(line, flush=True))
            print("\n" + report.reuse_table(out["reuse"], "simple"))
    finally:
        fleet.stop()


def tables_markdown(out: dict, machine: dict, goals: list[str]) -> str:
    lines = [f"Machine: {machine['nproc']} x {machine['cpu_model']}, {machine['mem_gib']} GiB, "
             f"kernel {machine['kernel']}, Python {machine['python']}; load average before "
             f"{machine['loadavg']}, after {machine.get('loadavg_after')}; idle before "
             f"{machine['idle_share_before']:.0%}.", ""]
    if "peers" in machine:
        lines += ["Peers: " + ", ".join(f"{k} {v}" for k, v in machine["peers"].items()), ""]
    if "fanout" in out:
        lines += [report.fanout_table(out["fanout"]["rows"]), ""]
    if "reuse" in out:
        lines += [report.reuse_table(out["reuse"]), ""]
    if "lifecycle" in out:
        data = out["lifecycle"]
        lines += [f"Lifecycle on the lab: 2 compilers, {data['agents']} + 3 agents, deploy_code "
                  f"{data['reps']} + {data['reps']} runs alternating (load average before "
                  f"{data['load_before']}, after {data['load_after']}; {data['seconds']} s).", "",
                  report.lifecycle_table(data), "", report.lifecycle_steps_table(data), ""]
    if "webhook" in out:
        lines += [webhook_bench.table(out["webhook"]["runs"], "github"), ""]
    lines += [f"- {g}" for g in goals]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
