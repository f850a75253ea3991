"""Network faults on real lab hosts, through the real `puppetops` command.

* sshd down and back within the retry window: the host's netns answers every new connection
  to port 22 with a TCP reset (what a client sees when sshd is not running — without stopping
  sshd, which is the host's PID 1 and would take the host with it); the rule is removed as soon
  as its counter shows a refused connection, and the run succeeds after retries.
* A host cut off mid-plan: its veth on the lab bridge is set down when the run's JSON-lines log
  shows the long step starting; that host fails with a timeout, the others complete, exit 1;
  once the link is up again a re-run completes.

Each fault is undone in a ``finally``, so the session lab stays usable for the next test.
"""
from __future__ import annotations

import json
import re
import subprocess
import sys
import textwrap
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

import pytest
import yaml

from puppetops.lab import net
from puppetops.lab.state import LabRecord

from helpers import REPO

pytestmark = pytest.mark.lab

FAULT_TABLE = "puppetops_test_fault"
PLAN = '''
from puppetops.plan_registry import plan
from puppetops.steps import RunCommand


def _named(name, step):
    step.name = name
    return step


@plan
def cutoff_probe(run, targets: str = "all", seconds: float = 5):
    """Three steps on every target in lockstep: quick, one taking `seconds`, quick."""
    return run.pipeline([_named("prepare", RunCommand("hostname")),
                         _named("work", RunCommand(f"sleep {seconds} && echo worked")),
                         _named("finish", RunCommand("echo finished"))],
                        targets, lockstep=True, catch_errors=True)
'''


def host_record(lab, short: str):
    """The lab's record of host ``short``: its netns and veth names, as the lab created them."""
    record = LabRecord.load(lab.state_dir)
    return next(h for h in record.hosts if h.short == short)


def inventory_with(lab, folder: Path, **ssh) -> Path:
    """The lab's inventory with other ``config.ssh`` settings."""
    data = yaml.safe_load(lab.inventory.read_text())
    data["config"]["ssh"].update(ssh)
    path = folder / "inventory.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def puppetops(*args: str, cwd: Path = REPO) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "puppetops", *args], cwd=cwd, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def wait_for(condition: Callable[[], bool], what: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


@contextmanager
def ssh_refused(netns: str) -> Iterator[Callable[[], int]]:
    """Port 22 of the host refuses every new connection (TCP reset) until the block ends;
    yields a function returning how many connection attempts were refused so far."""
    rules = (f"table inet {FAULT_TABLE} {{\n  chain input {{\n"
             "    type filter hook input priority 0; policy accept;\n"
             "    tcp dport 22 counter reject with tcp reset\n  }\n}\n")
    subprocess.run(["ip", "netns", "exec", netns, "nft", "-f", "-"], input=rules, text=True,
                   check=True, capture_output=True)

    def refused() -> int:
        listing = subprocess.run(["ip", "netns", "exec", netns, "nft", "list", "table", "inet",
                                  FAULT_TABLE], capture_output=True, text=True).stdout
        found = re.search(r"counter packets (\d+)", listing)
        return int(found.group(1)) if found else 0

    try:
        yield refused
    finally:
        subprocess.run(["ip", "netns", "exec", netns, "nft", "delete", "table", "inet",
                        FAULT_TABLE], capture_output=True)


@contextmanager
def link_restored(veth: str) -> Iterator[None]:
    """Whatever happens to ``veth`` inside the block, it is up again afterwards."""
    try:
        yield
    finally:
        net.ip("link", "set", veth, "up")


def results_of(document: dict, step: str) -> dict[str, dict]:
    """target (short name) → result of ``step`` in a run's JSON document."""
    for results in document["steps"]:
        if results["name"] == step:
            return {r["target"].split(".")[0]: r for r in results["results"]}
    return {}


@pytest.mark.reliability(fault="a host's sshd refuses connections (down), then is back within "
                               "the retry window",
                         outcome="that host succeeds after retries (attempts > 1), the others at "
                                 "their first attempt; exit 0")
def test_sshd_down_then_back_within_the_retry_window(lab, tmp_path):
    agent1 = host_record(lab, "agent1")
    inventory = inventory_with(lab, tmp_path, attempts=6)
    with ssh_refused(agent1.netns) as refused:
        proc = puppetops("command", "hostname", "-t", "agents", "-i", str(inventory),
                         "--format", "json")
        wait_for(lambda: refused() > 0 or proc.poll() is not None, "a refused connection")
        assert proc.poll() is None, proc.communicate()  # still retrying, not given up
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err[-3000:]
    results = results_of(json.loads(out), "command")
    assert results["agent1"]["status"] == "ok" and results["agent1"]["stdout"] == "agent1\n"
    assert results["agent1"]["attempts"] >= 2, results["agent1"]
    assert results["agent2"]["status"] == "ok" and results["agent2"]["attempts"] == 1


@pytest.mark.reliability(fault="a host cut off mid-plan (its network link set down during a "
                               "step)",
                         outcome="that host fails with a timeout naming the wait, the others "
                                 "complete every step; exit 1; after the link is back a re-run "
                                 "completes")
def test_host_cut_off_mid_plan_fails_alone_and_a_rerun_completes(lab, tmp_path):
    agent1 = host_record(lab, "agent1")
    project = tmp_path / "project"
    (project / "plans").mkdir(parents=True)
    (project / "plans" / "cutoff_probe.py").write_text(textwrap.dedent(PLAN))
    inventory = inventory_with(lab, tmp_path, **{"command-timeout": 20, "connect-timeout": 5})
    log = tmp_path / "run.jsonl"
    argv = ("plan", "cutoff_probe", "targets=agents,compilers", "-i", str(inventory),
            "--format", "json", "--log-file", str(log))

    def work_started() -> bool:
        lines = log.read_text().splitlines() if log.exists() else []
        return any(json.loads(line).get("step") == "work" for line in lines
                   if '"step_start"' in line)

    with link_restored(agent1.veth):
        proc = puppetops(*argv, cwd=project)
        wait_for(lambda: work_started() or proc.poll() is not None, "the step 'work' to start")
        assert proc.poll() is None, proc.communicate()
        net.ip("link", "set", agent1.veth, "down")
        out, err = proc.communicate(timeout=300)
    assert proc.returncode == 1, err[-3000:]
    document = json.loads(out)
    work, finish = results_of(document, "work"), results_of(document, "finish")
    assert work["agent1"]["status"] == "failed", work["agent1"]
    assert "timed out" in work["agent1"]["message"] or "no answer" in work["agent1"]["message"]
    others = ("agent2", "compiler1", "compiler2")
    assert all(work[t]["status"] == "ok" and work[t]["stdout"] == "worked\n" for t in others), work
    assert set(finish) == set(others) and all(r["status"] == "ok" for r in finish.values())

    again = puppetops(*argv, cwd=project)  # the link is up again
    out, err = again.communicate(timeout=300)
    assert again.returncode == 0, err[-3000:]
    finish = results_of(json.loads(out), "finish")
    assert set(finish) == {"agent1", *others} and all(r["status"] == "ok" for r in finish.values())
