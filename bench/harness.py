"""Measure one tool run as a child process: wall time, controller CPU, peak memory, machine CPU.

Why a child process per run: the controller CPU of a tool is what ``wait4`` reports for its
process tree (the tool plus every descendant it reaped, e.g. the ``ssh`` processes under
``xargs`` or Ansible's forked workers), so every tool is measured the same way, including its
interpreter start-up. Peak memory comes from GNU ``time`` (``%M``) wrapped around the tool: a
child's ``ru_maxrss`` also counts the memory of the process it was forked from until it
exec'd, which would credit every tool with this harness's own ~50 MB. Machine CPU (busy jiffies
from ``/proc/stat``) covers everything on the box: the client, all sshd processes and the remote
commands, which all share the same cores here; it is what the floor estimate is made from.
"""
from __future__ import annotations

import os
import platform
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass, field

_TICK = os.sysconf("SC_CLK_TCK")
GNU_TIME = shutil.which("time", path="/usr/bin:/bin")  # Debian package `time`


@dataclass
class Sample:
    wall: float          # seconds, perf_counter around the child
    ctrl_cpu: float      # user+sys seconds of the child's process tree (wait4)
    max_rss_mb: float    # peak RSS of the largest process in that tree (0 without GNU time)
    mach_cpu: float      # busy CPU seconds of the whole machine over the run
    rc: int
    stdout: str = field(repr=False, default="")   # full text, for each tool's success check
    stderr: str = field(repr=False, default="")

    def to_dict(self) -> dict:
        return {"wall": round(self.wall, 3), "ctrl_cpu": round(self.ctrl_cpu, 3),
                "max_rss_mb": round(self.max_rss_mb, 1), "mach_cpu": round(self.mach_cpu, 2),
                "rc": self.rc}

    def tail(self, chars: int = 600) -> str:
        """The end of the output, for error reports."""
        return (self.stdout + self.stderr)[-chars:]


def busy_jiffies() -> tuple[int, int]:
    """(busy, total) jiffies summed over all CPUs; busy excludes idle and iowait."""
    with open("/proc/stat") as fh:
        fields = [int(x) for x in fh.readline().split()[1:]]
    idle = fields[3] + fields[4]
    total = sum(fields[:8])  # guest time is already counted in user
    return total - idle, total


def jiffies_to_seconds(jiffies: int) -> float:
    return jiffies / _TICK


def run_measured(argv: list[str], *, env: dict | None = None, cwd: str | None = None,
                 timeout: float = 300.0) -> Sample:
    """Run ``argv`` to completion (killing its process group after ``timeout``) and measure it.

    Output goes to files, not pipes, so the measuring process does no work while the tool runs.
    """
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err, \
            tempfile.NamedTemporaryFile("r") as rss:
        if GNU_TIME:
            argv = [GNU_TIME, "-f", "%M", "-o", rss.name, *argv]
        busy0, _ = busy_jiffies()
        start = time.perf_counter()
        proc = subprocess.Popen(argv, env=env, cwd=cwd, stdin=subprocess.DEVNULL, stdout=out,
                                stderr=err, start_new_session=True)
        timer = threading.Timer(timeout, _kill_group, args=(proc.pid,))
        timer.start()
        try:
            _, status, usage = os.wait4(proc.pid, 0)
        finally:
            timer.cancel()
        wall = time.perf_counter() - start
        busy1, _ = busy_jiffies()
        proc.returncode = os.waitstatus_to_exitcode(status)  # tell Popen it was reaped
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read().decode(errors="replace"), err.read().decode(errors="replace")
        max_rss_kb = _last_int(rss.read())
    return Sample(wall=wall, ctrl_cpu=usage.ru_utime + usage.ru_stime,
                  max_rss_mb=max_rss_kb / 1024, mach_cpu=jiffies_to_seconds(busy1 - busy0),
                  rc=proc.returncode, stdout=stdout, stderr=stderr)


def _last_int(text: str) -> int:
    """GNU time's ``%M`` is the last line (a non-zero exit adds a line before it)."""
    lines = text.strip().splitlines()
    return int(lines[-1]) if lines and lines[-1].isdigit() else 0


def _kill_group(pid: int) -> None:
    """Timeout: the child runs in its own session, so its group holds only what it started."""
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def machine_info() -> dict:
    """What the numbers were measured on: cores, CPU model, kernel, Python, load."""
    model = "unknown"
    with open("/proc/cpuinfo") as fh:
        for line in fh:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    with open("/proc/meminfo") as fh:
        mem_kb = int(fh.readline().split()[1])
    return {"nproc": os.cpu_count(), "cpu_model": model, "kernel": platform.release(),
            "python": platform.python_version(), "mem_gib": round(mem_kb / 2**20, 1),
            "loadavg": load()}


def load() -> list[float]:
    """1/5/15-minute load averages (other engineers' JVMs share this box)."""
    return [round(x, 2) for x in os.getloadavg()]


def idle_share(seconds: float = 1.0) -> float:
    """Fraction of the machine's CPU that was idle over ``seconds`` (1.0 = quiet box)."""
    busy0, total0 = busy_jiffies()
    time.sleep(seconds)
    busy1, total1 = busy_jiffies()
    return 1.0 - (busy1 - busy0) / max(1, total1 - total0)


def wait_quiet(min_idle: float = 0.8, window: float = 0.3, max_wait: float = 10.0) -> float:
    """Wait (at least one ``window``) until the box is mostly idle; return the last idle share.

    Other engineers' JVMs share this machine: starting a run in the middle of their burst would
    charge it to whichever tool ran then. Each run records the idle share it started with.
    """
    deadline = time.monotonic() + max_wait
    idle = idle_share(window)
    while idle < min_idle and time.monotonic() < deadline:
        idle = idle_share(window)
    return idle
