"""Fan-out: one command on N fleet hosts with every tool, alternating, several repetitions.

Tools alternate inside each repetition (and the order rotates between repetitions), so a
disturbance from other work on the box hits all of them alike instead of one tool's block.
"""
from __future__ import annotations

from harness import run_measured, wait_quiet
from report import QUIET
from tools import TOOLS, Context, Tool, child_env

COMMANDS = {"true": "true", "read+checksum": "cat /etc/hostname && sha256sum /etc/services"}


def run(ctx: Context, fleet, sizes: list[int], reps: int, tools: list[Tool] = TOOLS,
        log=print) -> list[dict]:
    """Every (N, command, tool) ``reps`` times; one record per run."""
    records, pacer = [], _Pacer()
    for n in sizes:
        ctx.write_inventories(fleet, n)
        for rep in range(reps):
            order = tools[rep % len(tools):] + tools[:rep % len(tools)]
            for cmd_name, cmd in COMMANDS.items():
                for tool in order:
                    for record in measure(ctx, tool, n, cmd_name, cmd, rep, pacer):
                        records.append(record)
                        log(_line(record))
    return records


class _Pacer:
    """Waits for a quiet box before each run and re-runs a measurement that started busy, but
    stops doing either while the box stays busy: a long burst of other people's work then costs
    a few waits, not ten seconds and a second run for every measurement."""

    PATIENCE = 3  # busy starts in a row before giving up waiting

    def __init__(self) -> None:
        self.busy_streak = 0

    def wait(self) -> float:
        idle = wait_quiet(max_wait=10.0 if self.busy_streak < self.PATIENCE else 0.3)
        self.busy_streak = 0 if idle >= QUIET else self.busy_streak + 1
        return idle

    @property
    def retry(self) -> bool:
        return 0 < self.busy_streak < self.PATIENCE


def measure(ctx: Context, tool: Tool, n: int, cmd_name: str, cmd: str, rep: int,
            pacer: _Pacer) -> list[dict]:
    """One run; if the box was busy when it started, one more (both are kept, see report)."""
    records = []
    while True:
        idle = pacer.wait()  # also lets the previous run's sshd session processes exit
        sample = run_measured(tool.argv(ctx, n, cmd), env=child_env(tool, ctx),
                              cwd=str(ctx.workdir), timeout=60 + n)
        ok = tool.ok(sample, n)
        record = {"n": n, "cmd": cmd_name, "tool": tool.name, "rep": rep, "ok": ok,
                  "idle_before": round(idle, 2), **sample.to_dict()}
        if ok != n:
            record["error"] = sample.tail()
        records.append(record)
        if len(records) == 2 or not pacer.retry:
            return records


def _line(r: dict) -> str:
    flag = "" if r["ok"] == r["n"] else f"  FAILED {r['ok']}/{r['n']}: {r.get('error', '')[-200:]!r}"
    return (f"  N={r['n']:<3} {r['cmd']:<13} {r['tool']:<17} rep {r['rep']}: {r['wall']:6.2f}s wall "
            f"{r['ctrl_cpu']:6.2f} ctrl-CPU {r['mach_cpu']:6.2f} machine-CPU {r['max_rss_mb']:5.0f} MB"
            f"  (idle before {r['idle_before']:.0%}){flag}")
