"""The main job: ``puppetops demo --format json``, run from a clean lab.

The session's infrastructure is the demo's own work (tests/puppet_fixtures.py runs it on the
session lab, which is never the operator's default lab), so this test reads the document it
printed rather than standing up three more Puppet Servers.
"""
from __future__ import annotations

import pytest

from puppetops.lab import Lab
from puppetops.lab.fixtures import test_lab
from puppetops.lab.git_push import get

pytestmark = pytest.mark.lab


def test_the_demo_runs_the_whole_lifecycle_and_reports_every_plan_ok(infrastructure):
    doc = infrastructure.demo  # exactly one JSON document on stdout
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
    main = infrastructure.lab.host("main").address
    deploys = get(f"http://{main}:8088/deploys")["deploys"]  # the webhook still serves
    assert {"commit": pushed[0]["value"]["commit"], "status": "ok"}.items() <= \
        next(d for d in deploys if d["id"] == pushed[0]["value"]["deploy"]).items()
    assert Lab(**test_lab("session")).is_up()  # left up for the user to explore
    print(f"demo: {doc['duration']:.0f}s,", {p["name"]: p["duration"] for p in doc["plans"]})
