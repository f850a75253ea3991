"""Lab bring-up/teardown time and memory per host for 6, 50 and 200 hosts.

Run as root from the repo root:  python bench/lab_bench.py [SIZES...]
Prints a table and writes bench/results/lab.json. Uses its own state dir, bridge and subnet, so
it neither needs nor disturbs the default lab. Every host count gets 2 compilers, 1 lb, 1 main
and the rest agents; the address plan fits 200 hosts in the /24 (last one .216).

Memory per host is the RSS sum of the processes in the host's network namespace (its sshd, PID 1,
plus the ``unshare`` launcher that waits for it), as ``ip netns pids HOST | xargs ps -o rss=``.
RSS counts the shared libraries' pages in every host again; PSS (from smaps_rollup) splits shared
pages among their users, so its sum over hosts is what the lab really costs.
"""
from __future__ import annotations

import json
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from tabulate import tabulate

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from puppetops.lab import Lab  # noqa: E402

STATE_DIR, SUBNET, BRIDGE = "/var/tmp/puppetops-lab-bench", "10.80.0.0/24", "plbrb0"
RESULTS = Path(__file__).resolve().parent / "results" / "lab.json"


def pss_kib(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            return next(int(line.split()[1]) for line in f if line.startswith("Pss:"))
    except (OSError, StopIteration):
        return 0


def ssh_everywhere(info) -> float:
    """Seconds to run `true` over SSH (host key checking on) on every host, 16 clients at a time."""
    def one(host) -> int:
        return subprocess.run(info.ssh_command(host.short, "true"), capture_output=True).returncode
    start = time.monotonic()
    with ThreadPoolExecutor(16) as pool:
        failed = [h.short for h, rc in zip(info.hosts, pool.map(one, info.hosts)) if rc]
    if failed:
        raise SystemExit(f"ssh failed on {failed}")
    return time.monotonic() - start


def measure(hosts: int) -> dict:
    lab = Lab(STATE_DIR, SUBNET, BRIDGE)
    lab.down()  # a leftover from an interrupted run
    start = time.monotonic()
    info = lab.up(compilers=2, agents=hosts - 4)
    up_s = time.monotonic() - start
    try:
        time.sleep(1)  # let the readiness probes' pre-auth sshd children exit before measuring
        status = lab.status()
        assert len(status) == hosts and all(s.sshd for s in status)
        rss = [s.rss_kib / 1024 for s in status]
        pss = [sum(pss_kib(p) for p in s.pids) / 1024 for s in status]
        ssh_s = ssh_everywhere(info)
    finally:
        start = time.monotonic()
        lab.down()
        down_s = time.monotonic() - start
    return {"hosts": hosts, "up_s": round(up_s, 2), "down_s": round(down_s, 2), "ssh_all_s": round(ssh_s, 2),
            "rss_mib_per_host_mean": round(statistics.mean(rss), 2), "rss_mib_per_host_max": round(max(rss), 2),
            "rss_mib_total": round(sum(rss), 1), "pss_mib_per_host_mean": round(statistics.mean(pss), 2),
            "pss_mib_total": round(sum(pss), 1)}


def main(sizes: list[int]) -> None:
    rows = [measure(n) for n in sizes]
    print(tabulate(rows, headers="keys"))
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps({"measured": time.strftime("%Y-%m-%d %H:%M:%S"), "runs": rows}, indent=2) + "\n")
    print(f"written to {RESULTS}")


if __name__ == "__main__":
    main([int(a) for a in sys.argv[1:]] or [6, 50, 200])
