"""The main job, last in the session: ``puppetops demo --format json`` from a clean state.

The demo gets a lab of its own (state dir, subnet and bridge below), so it never touches the
default lab that the ``lab``/``infrastructure`` fixtures own for the session; this file's
name puts it after them. The session lab is still up then, but idle: its three JVMs use
about 1-2 % of a core together (measured), so the demo's own JVMs get the CPU. Memory is no
concern (two stood-up labs ≈ 6 GiB).
"""
from __future__ import annotations

import json
import os

import pytest

from helpers import cli
from puppetops.lab import Lab

pytestmark = pytest.mark.lab

STATE_DIR, SUBNET, BRIDGE = "/var/tmp/puppetops-lab-demo", "10.79.0.0/24", "plbrdemo"


@pytest.fixture
def demo_lab():
    if os.geteuid() != 0:
        pytest.skip("the demo's lab needs root (network namespaces, bridges, mounts)")
    lab = Lab(STATE_DIR, SUBNET, BRIDGE)
    lab.down()  # a clean machine state, whatever an earlier run left
    yield lab
    if os.environ.get("PUPPETOPS_KEEP_LAB") != "1":
        lab.down()


def test_the_demo_runs_the_whole_lifecycle_and_reports_every_plan_ok(demo_lab):
    proc = cli("demo", "--format", "json", "--state-dir", STATE_DIR, "--subnet", SUBNET,
               "--bridge", BRIDGE, timeout=1800)
    assert proc.returncode == 0, proc.stderr[-4000:]
    doc = json.loads(proc.stdout)  # exactly one JSON document on stdout
    assert doc["ok"] and "error" not in doc
    plans = [p["name"] for p in doc["plans"]]
    for name, times in (("bootstrap_ca", 1), ("add_compiler", 2), ("enroll_agent", 2),
                        ("deploy_code", 1), ("rotate_lb_member", 1)):
        assert plans.count(name) == times, plans
    assert all(p["ok"] for p in doc["plans"])
    runs = [r for s in doc["steps"] if s["name"] == "agent run" for r in s["results"]]
    assert len(runs) >= 4 and all(r["status"] in ("changed", "unchanged") for r in runs)
    assert demo_lab.is_up()  # left up for the user to explore
    print(f"demo: {doc['duration']:.0f}s,", {p["name"]: p["duration"] for p in doc["plans"]})
