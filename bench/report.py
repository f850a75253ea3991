"""Turn raw run records into the medians table, the floor estimate and the goal checks.

Medians are taken over the runs that started on a quiet box (>= 80 % idle) when there are at
least two, else over all runs; the "quiet starts" column says how many there were.

Floor (as in shared/docs/fanout.md): client and sshd share the same cores here, so no tool can
finish faster than the cheapest server-side work plus the cheapest client work, spread over
all cores: ``(min over tools of (machine CPU - controller CPU) + min over tools of controller
CPU) / nproc``, from each tool's median run. Other load on the box inflates machine CPU, so
taking the minimum keeps the estimate a floor.
"""
from __future__ import annotations

import os
import statistics
from collections import defaultdict

from tabulate import tabulate

GOAL_N = 200            # the fan-out goals are judged at this host count
FLOOR_GOAL = 1.5        # puppetops wall at N=200 must be <= 1.5 x floor
REUSE_GOAL = 0.15       # each extra step <= 15 % of the first step
INVENTORY_GOALS = {"seconds": 0.5, "mb": 100.0}
ENROL_GOAL = 3.0        # enrolling N agents <= 3 x enrolling one
DEPLOY_GOAL = 1.3       # deploy_code on main + 2 compilers <= 1.3 x on main alone (medians)
DEPLOY_ONE, DEPLOY_THREE = "deploy_code main only", "deploy_code main + 2 compilers"
QUIET = 0.8             # a run "started quiet" when >= 80 % of the machine's CPU was idle


def summarise(records: list[dict]) -> list[dict]:
    """One row per (N, command, tool): medians over repetitions, all-hosts-reached flag."""
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for r in records:
        groups[(r["n"], r["cmd"], r["tool"])].append(r)
    rows = []
    for (n, cmd, tool), every_run in groups.items():
        quiet = [r for r in every_run if r.get("idle_before", 1.0) >= QUIET]
        runs = quiet if len(quiet) >= 2 else every_run
        walls = [r["wall"] for r in runs]
        rows.append({
            "n": n, "cmd": cmd, "tool": tool, "reps": len(runs),
            "wall": statistics.median(walls), "wall_min": min(walls), "wall_max": max(walls),
            "ctrl_cpu": statistics.median(r["ctrl_cpu"] for r in runs),
            "mach_cpu": statistics.median(r["mach_cpu"] for r in runs),
            "max_rss_mb": max(r["max_rss_mb"] for r in runs),
            "all_ok": all(r["ok"] == n for r in runs),
            "quiet_starts": len(quiet), "runs": len(every_run),
        })
    for (n, cmd), group in _by_case(rows).items():
        ours = next((r for r in group if r["tool"] == "puppetops"), None)
        floor = floor_estimate(group)
        for r in group:
            r["ratio"] = r["wall"] / ours["wall"] if ours else None
            r["floor"] = floor
    return sorted(rows, key=lambda r: (r["n"], r["cmd"], r["wall"]))


def floor_estimate(group: list[dict]) -> float:
    ok = [r for r in group if r["all_ok"]] or group
    server = min(r["mach_cpu"] - r["ctrl_cpu"] for r in ok)
    client = min(r["ctrl_cpu"] for r in ok)
    return max(server, 0.0) / (os.cpu_count() or 1) + client / (os.cpu_count() or 1)


def _by_case(rows: list[dict]) -> dict[tuple, list[dict]]:
    cases: dict[tuple, list[dict]] = defaultdict(list)
    for r in rows:
        cases[(r["n"], r["cmd"])].append(r)
    return cases


def fanout_table(rows: list[dict], fmt: str = "github") -> str:
    table = []
    for r in rows:
        spread = f"{r['wall_min']:.2f}–{r['wall_max']:.2f}" if r["reps"] > 1 else "–"
        table.append([r["n"], r["cmd"], r["tool"] + ("" if r["all_ok"] else " (FAILED)"),
                      f"{r['wall']:.2f}", spread, f"{r['ratio']:.2f}" if r["ratio"] else "–",
                      f"{r['ctrl_cpu']:.2f}", f"{r['mach_cpu']:.2f}", f"{r['max_rss_mb']:.0f}",
                      f"{r['floor']:.2f}", f"{r['quiet_starts']}/{r['runs']}"])
    return tabulate(table, headers=["N", "command", "tool", "wall s", "min–max", "× puppetops",
                                    "ctrl CPU s", "machine CPU s", "max RSS MB", "floor s",
                                    "quiet starts"], tablefmt=fmt)


def fanout_goals(rows: list[dict]) -> list[str]:
    """The two fan-out goals at N=200, per command: met or not, with the numbers."""
    lines = []
    for (n, cmd), group in sorted(_by_case(rows).items()):
        by_tool = {r["tool"]: r for r in group}
        ours, pyinfra = by_tool.get("puppetops"), by_tool.get("pyinfra")
        if n != GOAL_N or not ours:
            continue
        if pyinfra:
            lines.append(_goal(f"N={n} {cmd}: puppetops wall <= pyinfra wall",
                               ours["wall"] <= pyinfra["wall"],
                               f"{ours['wall']:.2f} s vs {pyinfra['wall']:.2f} s"))
        lines.append(_goal(f"N={n} {cmd}: puppetops wall <= {FLOOR_GOAL} x floor",
                           ours["wall"] <= FLOOR_GOAL * ours["floor"],
                           f"{ours['wall']:.2f} s = {ours['wall'] / ours['floor']:.2f} x floor "
                           f"{ours['floor']:.2f} s"))
    return lines or [f"[not measured] fan-out goals are at N={GOAL_N} (not in this run)"]


def reuse_table(result: dict, fmt: str = "github") -> str:
    """Per step: plan wall and its share of step 1, the plan step's controller CPU and the rest
    of the machine's CPU (sshd + remote commands), and the same command as a separate run."""
    plan, separate = result["plan"], result["separate"]
    table = []
    for i, command in enumerate(plan["commands"]):
        server = plan["step_mach_cpu"][i] - plan["step_ctrl_cpu"][i]
        table.append([i + 1, command, f"{plan['steps'][i]:.2f}",
                      f"{plan['steps'][i] / plan['steps'][0] * 100:.0f} %",
                      f"{plan['step_ctrl_cpu'][i]:.2f}", f"{server:.2f}",
                      f"{separate['steps'][i]:.2f}"])
    table.append(["total", "", f"{sum(plan['steps']):.2f}", "", "", "",
                  f"{sum(separate['steps']):.2f}"])
    return tabulate(table, headers=["step", "command", "5-step plan s", "% of step 1",
                                    "plan ctrl CPU s", "plan sshd-side CPU s",
                                    "separate 1-step runs s"], tablefmt=fmt)


def reuse_goals(result: dict) -> list[str]:
    steps = result["plan"]["steps"]
    worst = max(steps[1:]) / steps[0]
    return [_goal(f"reuse: every extra step <= {REUSE_GOAL:.0%} of step 1", worst <= REUSE_GOAL,
                  f"worst extra step {worst:.1%} of step 1; "
                  f"handshakes per target {result['plan']['handshakes_per_target']}")]


def inventory_goals(result: dict) -> list[str]:
    return [_goal(f"inventory of {result['targets']} targets: <= {INVENTORY_GOALS['seconds']} s and "
                  f"<= {INVENTORY_GOALS['mb']:.0f} MB",
                  result["load_s"] <= INVENTORY_GOALS["seconds"]
                  and result["max_rss_mb"] <= INVENTORY_GOALS["mb"],
                  f"{result['load_s']:.3f} s, peak RSS {result['max_rss_mb']:.0f} MB "
                  f"({result['python_rss_mb']:.0f} MB of it the interpreter and imports)")]


# -- lifecycle (bench/lifecycle.py) ---------------------------------------------------------

def lifecycle_goals(rows: list[dict], agents: int) -> list[str]:
    wall = {r["plan"]: r["wall_s"] for r in rows}
    return [
        _ratio(wall, f"enroll_agent ×{agents}", "enroll_agent ×1", ENROL_GOAL,
               f"enrolling {agents} agents ≤ {ENROL_GOAL:g} × enrolling one"),
        _ratio(wall, DEPLOY_THREE, DEPLOY_ONE, DEPLOY_GOAL,
               f"deploy_code on main + 2 compilers ≤ {DEPLOY_GOAL:g} × main alone (medians)"),
    ]


def _ratio(wall: dict, big: str, small: str, limit: float, what: str) -> str:
    if big not in wall or small not in wall or not wall[small]:
        return f"[not measured] {what}"
    ratio = wall[big] / wall[small]
    return (f"[{'met' if ratio <= limit else 'NOT MET'}] {what}: {ratio:.2f} × "
            f"({wall[big]:.2f} s vs {wall[small]:.2f} s)")


def lifecycle_table(data: dict, fmt: str = "github") -> str:
    """Every plan: wall (for repeated ones the median of the quiet starts, see lifecycle.py),
    min–max, and its slowest steps."""
    body = []
    for r in data["rows"]:
        spread = f"{r['min_s']:.2f}–{r['max_s']:.2f}" if r.get("reps", 1) > 1 else "–"
        runs = f"{r['quiet_starts']}/{r['reps']}" if "quiet_starts" in r else str(r.get("reps", 1))
        body.append([r["plan"] + ("" if r["ok"] else " (FAILED)"), f"{r['wall_s']:.2f}", spread,
                     runs, "; ".join(data["where"].get(r["plan"], []))])
    return tabulate(body, headers=["plan", "wall s", "min–max", "runs (quiet starts)",
                                   "slowest steps"], tablefmt=fmt, disable_numparse=True)


def lifecycle_steps_table(data: dict, fmt: str = "github") -> str:
    """deploy_code step by step: the median of each step's slowest target, both sizes."""
    one, three = data["deploy"].get(DEPLOY_ONE), data["deploy"].get(DEPLOY_THREE)
    if not one or not three:
        return ""
    names = list(dict.fromkeys([*three["steps"], *one["steps"]]))
    body = [[n, f"{one['steps'].get(n, 0):.3f}", f"{three['steps'].get(n, 0):.3f}",
             f"{three['steps'].get(n, 0) - one['steps'].get(n, 0):+.3f}"] for n in names]
    body.append(["whole plan (median wall)", f"{one['median_s']:.3f}", f"{three['median_s']:.3f}",
                 f"{three['median_s'] - one['median_s']:+.3f}"])
    body.append(["machine CPU s (median)", f"{one['mach_cpu_s']:.2f}", f"{three['mach_cpu_s']:.2f}",
                 f"{three['mach_cpu_s'] - one['mach_cpu_s']:+.2f}"])
    return tabulate(body, headers=["deploy_code step", "main only s", "main + 2 compilers s",
                                   "difference s"], tablefmt=fmt, disable_numparse=True)


def _goal(what: str, met: bool, detail: str) -> str:
    return f"[{'met' if met else 'NOT MET'}] {what}: {detail}"
