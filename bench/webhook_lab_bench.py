"""Push-to-deployed latency on a stood-up lab: the webhook on main against deploy_code by hand.

On a lab whose infrastructure stands (``invoke demo``, or a test session's lab kept with
PUPPETOPS_KEEP_LAB=1), it runs install_webhook (unchanged if it is there), then alternates,
``--reps`` times each, the same kind of change — one new commit to production's site.pp,
made from the controller in a clone of the control repo on main:

- **webhook**: ``git push``; the post-receive hook posts it, the webhook on main runs
  deploy_code. Latency = the deploy's ``finished`` − ``requested`` as the webhook records
  them (hook fires → main and every compiler at the new commit, caches flushed: the deploy
  is ``ok`` only then); also push start → ``ok`` seen from the controller (0.1 s polls).
- **by hand**: the webhook stopped, ``git push``, then ``deploy_code`` from the controller
  (``invoke deploy-code``'s work): the plan's own time, and with its run's set-up and close.

Each run starts once the box is ≥ 80 % idle or 20 s have passed and ≥ 6 s after the previous
deploy (r10k's multiplexed SSH connection gone, as for a deploy from cron); medians over the
runs that started quiet when at least two did. Goal: webhook latency ≤ 1.2 × the plan's own.

    python bench/webhook_lab_bench.py [--inventory /var/tmp/puppetops-lab/inventory.yaml]
                                      [--reps 5]

Prints a table and writes bench/results/webhook_lab.json.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
import uuid
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(1, str(Path(__file__).resolve().parents[1]))

import harness  # noqa: E402
import report  # noqa: E402

from tabulate import tabulate  # noqa: E402

from puppetops import Inventory, Run  # noqa: E402
from puppetops.lab.git_push import Checkout, wait_for_deploy, webhook_url  # noqa: E402
from puppetops.output import Output  # noqa: E402
from puppetops.plans.deploy_code import deploy_code  # noqa: E402
from puppetops.plans.install_webhook import DAEMON, SERVICE, install_webhook  # noqa: E402
from puppetops.steps import Service  # noqa: E402
from puppetops.steps.code.provision import DEFAULT_REPO  # noqa: E402
from puppetops.steps.code.r10k import MUX_PERSIST  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
GOAL = 1.2


def site_pp(token: str) -> str:
    return f'node default {{\n  notify {{ "bench {token}": }}\n}}\n'


def _seconds(stamp: str) -> float:
    return datetime.fromisoformat(stamp).timestamp()


def _service(inventory: str, ensure: str) -> None:
    with Run(Inventory.load(inventory), output=Output()) as run:
        run.step(Service(SERVICE, ensure, daemon=DAEMON), "main")


def by_webhook(checkout: Checkout, base: str) -> dict:
    token = uuid.uuid4().hex[:8]
    head = checkout.commit({"manifests/site.pp": site_pp(token)}, f"bench {token}")
    start = time.monotonic()
    checkout.push()
    pushed = time.monotonic() - start
    deploy = wait_for_deploy(base, "production", head, timeout=900, poll=0.1)
    seen = time.monotonic() - start
    ok = deploy["status"] == "ok"
    return {"ok": ok, "latency_s": round(_seconds(deploy["finished"])
                                         - _seconds(deploy["requested"]), 3),
            "push_s": round(pushed, 3), "push_to_ok_s": round(seen, 3), "deploy": deploy["id"]}


def by_hand(checkout: Checkout, inventory: str) -> dict:
    token = uuid.uuid4().hex[:8]
    checkout.commit({"manifests/site.pp": site_pp(token)}, f"bench {token}")
    checkout.push()
    start = time.monotonic()
    with Run(Inventory.load(inventory), output=Output()) as run:
        plan_start = time.monotonic()
        results = deploy_code(run)
        plan = time.monotonic() - plan_start
    return {"ok": results.ok, "plan_s": round(plan, 3),
            "run_s": round(time.monotonic() - start, 3)}


def measure(inventory: str, reps: int) -> dict:
    with Run(Inventory.load(inventory), output=Output()) as run:
        installed = install_webhook(run)
        main = run.targets("main")[0]
    if not installed.ok:
        raise SystemExit(f"install_webhook failed:\n{installed.table()}")
    base = webhook_url(main)
    runs: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="puppetops-bench-") as folder:
        checkout = Checkout(main, f"{folder}/control", DEFAULT_REPO)
        for rep in range(reps):
            for arm in ("webhook", "hand"):
                time.sleep(MUX_PERSIST + 1)
                if arm == "hand":
                    _service(inventory, "stopped")
                idle = harness.wait_quiet(max_wait=20.0)
                load = harness.load()[0]
                try:
                    row = by_webhook(checkout, base) if arm == "webhook" else \
                        by_hand(checkout, inventory)
                finally:
                    if arm == "hand":
                        _service(inventory, "running")
                row.update(arm=arm, rep=rep, idle_before=round(idle, 2), load1=load)
                runs.append(row)
                print(f"  {arm:8} rep {rep}: "
                      + ", ".join(f"{k} {v}" for k, v in row.items()
                                  if k.endswith("_s")) + f", idle before {idle:.0%}",
                      flush=True)
    return {"runs": runs, "machine": harness.machine_info()}


def summary(data: dict) -> dict:
    out = {}
    for arm, keys in (("webhook", ("latency_s", "push_to_ok_s", "push_s")),
                      ("hand", ("plan_s", "run_s"))):
        rows = [r for r in data["runs"] if r["arm"] == arm and r["ok"]]
        quiet = [r for r in rows if r["idle_before"] >= report.QUIET]
        used = quiet if len(quiet) >= 2 else rows  # each arm alone: table() says which
        out[arm] = {k: statistics.median(r[k] for r in used) for k in keys if used}
        out[arm].update(runs=len(rows), quiet=len(quiet))
    return out


def table(data: dict, tablefmt: str = "github") -> str:
    s = summary(data)
    hook, hand = s["webhook"], s["hand"]
    rows = [("webhook: hook fires → all servers at the commit, flushed", hook["latency_s"]),
            ("webhook: git push start → ok seen from the controller", hook["push_to_ok_s"]),
            ("  of which git push (hook posts before it returns)", hook["push_s"]),
            ("by hand: deploy_code, the plan's own time", hand["plan_s"]),
            ("by hand: deploy_code with its run's set-up and close", hand["run_s"])]
    ratio = hook["latency_s"] / hand["plan_s"]
    loads = [r["load1"] for r in data["runs"]]
    used = "runs started quiet" if hook["quiet"] >= 2 and hand["quiet"] >= 2 else "all runs"
    lines = [tabulate(rows, headers=(f"median of {used}", "s"), tablefmt=tablefmt,
                      floatfmt=".2f"), "",
             f"webhook latency / plan's own time = {ratio:.2f} (goal ≤ {GOAL}: "
             f"{'met' if ratio <= GOAL else 'NOT met'}); runs: webhook {hook['runs']} "
             f"({hook['quiet']} quiet), by hand {hand['runs']} ({hand['quiet']} quiet); "
             f"1-minute load average at the runs' starts {min(loads):.1f}–{max(loads):.1f} on "
             f"{data['machine']['nproc']} cores"]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--inventory", default="/var/tmp/puppetops-lab/inventory.yaml")
    parser.add_argument("--reps", type=int, default=5)
    args = parser.parse_args(argv)
    data = measure(args.inventory, args.reps)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "webhook_lab.json").write_text(json.dumps(data, indent=2))
    print("\n" + table(data))
    return 0


if __name__ == "__main__":
    sys.exit(main())
