"""Webhook request handling: signed pushes accepted per second, deploys stubbed at the plan
boundary — so a forge's retry storm or a burst of pushes cannot take the webhook down.

    python bench/webhook_bench.py [--requests 20000] [--threads 8] [--processes 2]
                                  [--deploy-seconds 1.0]

The server is the real one (waitress, the queue, the SQLite store, the JSON log to a file) in a
process of its own, with the deploy function replaced by one that sleeps ``--deploy-seconds``
(a real deploy_code takes several seconds; 0: returns at once, so nearly every push becomes a
deploy of its own — the worst case for the server, measured as a second row). Clients are
keep-alive HTTP/1.1 connections, ``--threads`` per client process (a process per core keeps
the clients' own GIL from being what is measured). Every push is a GitHub push signed with the
secret, to one of 10 environments, each with a new commit; a push counts when it got 202.
Goal: at least 1,000 accepted pushes per second on this machine.
"""
from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from tabulate import tabulate

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from puppetops.testing.webhook import Client, forge_headers, push_payload  # noqa: E402

GOAL = 1000.0
SECRET = "bench-secret"
ENVIRONMENTS = [f"env{i}" for i in range(10)]
RESULTS = Path(__file__).resolve().parent / "results"
SERVER = """
import sys, time
from puppetops.webhook import config
from puppetops.webhook.deploy import JobOutcome
from puppetops.webhook.server import run_forever
class Stub:
    def deploy(self, environment, commit):
        time.sleep(float(sys.argv[2]))
        return JobOutcome(True, {"stub": True})
    def remove(self, environment):
        return self.deploy(environment, "")
    def interrupt(self, signum):
        pass
run_forever(config.load(sys.argv[1]), Stub())
"""


def _bodies(worker: int, count: int) -> list[tuple[bytes, dict[str, str]]]:
    """Signed pushes, prepared before the clock starts (signing is the forge's cost)."""
    out = []
    for i in range(count):
        commit = f"{worker:08x}{i:032x}"
        body = json.dumps(push_payload("github", ENVIRONMENTS[i % len(ENVIRONMENTS)],
                                       commit)).encode()
        out.append((body, forge_headers("github", body, SECRET)))
    return out


def _client_process(port: int, threads: int, per_thread: int, worker: int,
                    start_at: float, results: "multiprocessing.Queue") -> None:
    """``threads`` keep-alive clients; puts (accepted, other statuses, latencies, seconds)."""
    prepared = [_bodies(worker * threads + t, per_thread) for t in range(threads)]
    accepted, others, latencies = [0], [0], []
    lock = threading.Lock()

    def client(requests: list[tuple[bytes, dict[str, str]]]) -> None:
        http = Client(port)
        mine, bad, lat = 0, 0, []
        for body, headers in requests:
            sent = time.perf_counter()
            status = http.request("POST", "/payload", body, headers).status
            lat.append(time.perf_counter() - sent)
            mine, bad = (mine + 1, bad) if status == 202 else (mine, bad + 1)
        http.close()
        with lock:
            accepted[0] += mine
            others[0] += bad
            latencies.extend(lat)

    workers = [threading.Thread(target=client, args=(r,)) for r in prepared]
    time.sleep(max(0.0, start_at - time.time()))
    began = time.perf_counter()
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    results.put((accepted[0], others[0], latencies, time.perf_counter() - began))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run(requests: int = 20000, threads: int = 8, processes: int = 2,
        server_threads: int = 8, deploy_seconds: float = 1.0) -> dict:
    """Start the stubbed server, fire ``requests`` signed pushes, return the measurements."""
    workdir = Path(tempfile.mkdtemp(prefix="puppetops-webhook-bench-"))
    port = _free_port()
    config = workdir / "webhook.yaml"
    config.write_text(f"listen: 127.0.0.1:{port}\ndatabase: db.sqlite3\nlog_file: log\n"
                      f"threads: {server_threads}\nworkers: 4\n")
    # its stderr to a file: a pipe nobody reads once it serves would fill up with waitress's
    # "Task queue depth" warnings and stop the server in the middle of a run
    stderr = workdir / "stderr"
    with open(stderr, "w") as out:
        server = subprocess.Popen([sys.executable, "-c", SERVER, str(config),
                                   str(deploy_seconds)],
                                  env=dict(os.environ, PUPPETOPS_WEBHOOK_SECRET=SECRET),
                                  stderr=out)
    try:
        while "listening on" not in stderr.read_text():
            if server.poll() is not None:
                raise RuntimeError(f"the webhook exited {server.returncode} without serving")
            time.sleep(0.05)
        per_thread = max(1, requests // (threads * processes))
        results: multiprocessing.Queue = multiprocessing.Queue()
        start_at = time.time() + 2.0  # every client process has prepared its bodies by then
        clients = [multiprocessing.Process(target=_client_process,
                                           args=(port, threads, per_thread, p, start_at, results))
                   for p in range(processes)]
        cpu_before = _cpu(server.pid)
        for c in clients:
            c.start()
        parts = [results.get(timeout=600) for _ in clients]
        for c in clients:
            c.join()
        server_cpu = _cpu(server.pid) - cpu_before
        health = Client(port).request("GET", "/health").body
    finally:
        server.terminate()
        server.wait(60)
    accepted = sum(p[0] for p in parts)
    latencies = sorted(lat for p in parts for lat in p[2])
    seconds = max(p[3] for p in parts)
    return {"requests": accepted + sum(p[1] for p in parts), "accepted": accepted,
            "rejected": sum(p[1] for p in parts), "seconds": round(seconds, 3),
            "per_second": round(accepted / seconds, 1),
            "p50_ms": round(statistics.median(latencies) * 1000, 2),
            "p99_ms": round(latencies[int(len(latencies) * 0.99) - 1] * 1000, 2),
            "server_cpu_s": round(server_cpu, 2), "client_threads": threads * processes,
            "server_threads": server_threads, "deploy_seconds": deploy_seconds,
            "deploys": sum(health["deploys"].values()),
            "loadavg": os.getloadavg()[0]}


def _cpu(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def table(results: list[dict], tablefmt: str = "simple") -> str:
    rows = [(r["deploy_seconds"], r["requests"], r["client_threads"], r["server_threads"],
             r["accepted"], r["seconds"], r["per_second"], r["p50_ms"], r["p99_ms"],
             round(r["server_cpu_s"] / r["requests"] * 1000, 3), r["deploys"], r["loadavg"])
            for r in results]
    return tabulate(rows, headers=("stub deploy s", "pushes", "client threads",
                                   "server threads", "202", "seconds", "accepted/s", "p50 ms",
                                   "p99 ms", "server CPU ms/push", "deploys run", "load"),
                    tablefmt=tablefmt)


def goal(result: dict) -> str:
    verdict = "met" if result["per_second"] >= GOAL else "NOT met"
    return (f"webhook: {result['per_second']:.0f} signed pushes accepted/s with "
            f"{result['deploy_seconds']} s stub deploys (goal >= {GOAL:.0f}/s): {verdict} "
            f"(load average {result['loadavg']:.1f})")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=20000)
    parser.add_argument("--threads", type=int, default=8, help="per client process")
    parser.add_argument("--processes", type=int, default=2, help="client processes")
    parser.add_argument("--server-threads", type=int, default=8)
    parser.add_argument("--deploy-seconds", type=float, default=1.0,
                        help="how long the stub deploy takes (a second row with 0 follows)")
    args = parser.parse_args(argv)
    results = [run(args.requests, args.threads, args.processes, args.server_threads, seconds)
               for seconds in dict.fromkeys([args.deploy_seconds, 0.0])]
    print(table(results))
    print(goal(results[0]))
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "webhook.json").write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
