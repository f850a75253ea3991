"""Connection reuse on N hosts: per-step time of a 5-step plan (one Run, connections kept)
versus the same 5 commands as 5 separate one-step Runs (a handshake per host every time).

Both modes run as fresh processes, alternating, ``reps`` times; per-step medians are reported.
"""
from __future__ import annotations

import json
import os
import statistics
import sys

from harness import run_measured, wait_quiet
from tools import BENCH, REPO, Context



def run(ctx: Context, fleet, n: int, reps: int, log=print) -> dict:
    ctx.write_inventories(fleet, n)
    inventory = str(ctx.workdir / f"puppetops_{n}.yaml")
    runs: dict[str, list[dict]] = {"plan": [], "separate": []}
    for rep in range(reps):
        for mode in (("plan", "separate") if rep % 2 == 0 else ("separate", "plan")):
            wait_quiet()
            sample = run_measured([sys.executable, str(BENCH / "client_reuse.py"), inventory, mode],
                                  env=dict(os.environ, PYTHONPATH=str(REPO)), timeout=300)
            if sample.rc != 0:
                raise RuntimeError(f"reuse bench ({mode}) failed: {sample.tail()}")
            result = json.loads(sample.stdout)
            result.update(ctrl_cpu=sample.ctrl_cpu, mach_cpu=sample.mach_cpu)
            runs[mode].append(result)
            log(f"  N={n} reuse {mode:<8} rep {rep}: steps "
                + " ".join(f"{s:.2f}" for s in result["steps"]) + f" s, total {result['total']:.2f} s")
    summary = {"n": n, "reps": reps}
    for mode, results in runs.items():
        summary[mode] = {
            "commands": results[0]["commands"],
            "steps": _median_per_step(results, "steps"),
            "step_ctrl_cpu": _median_per_step(results, "step_ctrl_cpu"),
            "step_mach_cpu": _median_per_step(results, "step_mach_cpu"),
            "total": statistics.median(r["total"] for r in results),
            "ctrl_cpu": statistics.median(r["ctrl_cpu"] for r in results),
            "mach_cpu": statistics.median(r["mach_cpu"] for r in results),
            "handshakes_per_target": results[0]["handshakes_per_target"],
            "runs": results,
        }
    return summary


def _median_per_step(results: list[dict], key: str) -> list[float]:
    return [statistics.median(r[key][i] for r in results) for i in range(len(results[0][key]))]
