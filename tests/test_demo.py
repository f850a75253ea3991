"""The main job: ``puppetops demo --format json`` from a clean state.

The demo gets a lab of its own (``test_lab("demo")``), so it neither touches the operator's
default lab nor the session lab of the ``lab``/``infrastructure`` fixtures, and it does not
matter where it runs in the session: an idle stood-up session lab's three JVMs use about 1-2 %
of a core together (measured), and two stood-up labs need about 6 GiB.
"""
from __future__ import annotations

import json
import os

import pytest

from helpers import cli
from puppetops.lab import Lab, default_topology
from puppetops.lab.git_push import get
from puppetops.lab.fixtures import test_lab

pytestmark = pytest.mark.lab

DEMO = test_lab("demo")
STATE_DIR, SUBNET, BRIDGE = DEMO["state_dir"], DEMO["subnet"], DEMO["bridge"]


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
                        ("deploy_code", 1), ("rotate_lb_member", 1), ("install_webhook", 1)):
        assert plans.count(name) == times, plans
    assert all(p["ok"] for p in doc["plans"])
    runs = [r for s in doc["steps"] if s["name"] == "agent run" for r in s["results"]]
    assert len(runs) >= 4 and all(r["status"] in ("changed", "unchanged") for r in runs)
    # it ends with a git push from the controller, deployed by the webhook on main
    pushed = [r for s in doc["steps"] if s["name"] == "git push, webhook deploy"
              for r in s["results"]]
    assert len(pushed) == 1 and pushed[0]["status"] == "ok", pushed
    main = default_topology(2, 2, SUBNET).host("main").address
    deploys = get(f"http://{main}:8088/deploys")["deploys"]  # the webhook still serves
    assert {"commit": pushed[0]["value"]["commit"], "status": "ok"}.items() <= \
        next(d for d in deploys if d["id"] == pushed[0]["value"]["deploy"]).items()
    assert demo_lab.is_up()  # left up for the user to explore
    print(f"demo: {doc['duration']:.0f}s,", {p["name"]: p["duration"] for p in doc["plans"]})
