"""Connection reuse: a 5-step plan in one Run versus the same 5 commands as 5 one-step Runs.

Runs in puppetops' environment:  python client_reuse.py INVENTORY plan|separate
Prints one JSON line: per step the seconds of the ``run.command`` call, its controller CPU and
the machine's CPU (client + every sshd and remote command, from /proc/stat), so the sshd share of
each step shows; the total seconds (with connection closing) and handshakes per target (1 means
every step reused its connection).
"""
import json
import resource
import sys
import time

from harness import busy_jiffies, jiffies_to_seconds
from puppetops import Inventory, Run

COMMANDS = ["true", "cat /etc/hostname", "sha256sum /etc/services", "uname -r", "id -u"]


def cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def timed_step(run: Run, command: str) -> dict:
    busy, used, start = busy_jiffies()[0], cpu(), time.perf_counter()
    results = run.command(command, "all", catch_errors=True)
    elapsed = time.perf_counter() - start
    if not results.ok:
        why = "; ".join(f"{r.target}: {r.status} {r.message}" for r in results.error_set)
        raise SystemExit(f"{command!r} failed on {results.error_set.names}: {why}")
    return {"wall": elapsed, "ctrl_cpu": cpu() - used,
            "mach_cpu": jiffies_to_seconds(busy_jiffies()[0] - busy)}


def main() -> None:
    inventory, mode = Inventory.load(sys.argv[1]), sys.argv[2]
    start = time.perf_counter()
    handshakes = []
    if mode == "plan":
        with Run(inventory) as run:
            steps = [timed_step(run, command) for command in COMMANDS]
            handshakes = sorted(set(run.pool.handshakes().values()))
    else:
        steps = []
        for command in COMMANDS:
            with Run(inventory) as run:
                steps.append(timed_step(run, command))
    print(json.dumps({"mode": mode, "commands": COMMANDS, "steps": [s["wall"] for s in steps],
                      "step_ctrl_cpu": [s["ctrl_cpu"] for s in steps],
                      "step_mach_cpu": [s["mach_cpu"] for s in steps],
                      "total": time.perf_counter() - start,
                      "handshakes_per_target": handshakes}))


if __name__ == "__main__":
    main()
