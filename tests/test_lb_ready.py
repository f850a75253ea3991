"""lb_ready without hosts: only healthy compilers go back, their records go with them."""
from __future__ import annotations

import json
import re

import pytest

from fake_fleet import C1, C2, LB, Fleet, Messages, planner
from puppetops.output import Output
from puppetops.plans.lb_ready import lb_ready
from puppetops.steps.lb.out_records import CODE_DIFFERS, MAINTENANCE, OutRecord

RECORD = f"/var/lib/puppetops/lb-out/{C1}.json"
HEALTH = re.compile(r"curl -sk .*/status/v1/simple")
STARTED = re.compile(r"for i in \$\(seq \d+\); do true \|\| exit 3; ")  # wait_ready's loop


def starting(fleet: Fleet, running: bool, *waits: int):
    """compiler1's Puppet Server not healthy yet, under its package's init script, its
    process up or not; ``waits``: the exit codes of wait_ready's polls (4: not yet)."""
    t = planner(fleet).on(HEALTH, stdout="starting", targets=[C1])
    for code in reversed(waits):  # later rules answer first
        t.on(STARTED, exit_code=code, times=1, targets=[C1])
    t.on("[ -d /run/systemd/system ]", exit_code=1, targets=[C1])
    t.on("[ -x /etc/init.d/puppetserver ]", targets=[C1])
    t.on("/etc/init.d/puppetserver status >/dev/null 2>&1", exit_code=0 if running else 3,
         targets=[C1])
    return t


def out_by(plan: str, reason: str = MAINTENANCE, *environments: str) -> str:
    return OutRecord(plan, "0123456789ab", "ops@admin1", "2026-11-29T07:00:00Z", reason,
                     environments).to_json(C1) + "\n"


def with_health(fleet: Fleet, health: str, noop: bool = False, output=None):
    t = planner(fleet, noop=noop, output=output)
    t.on(HEALTH, stdout=health, targets=[C1])
    return t


def test_a_healthy_member_left_out_goes_back_and_its_record_goes():
    fleet = Fleet()
    fleet.admin[C1] = 1
    fleet.files[(LB, RECORD)] = out_by("rotate_lb_member")
    t = with_health(fleet, "running")
    results = t.run_plan(lb_ready, targets="compiler1")
    assert results.ok, results.details()
    assert fleet.admin == {C1: 0, C2: 0} and (LB, RECORD) not in fleet.files
    again = with_health(fleet, "running").run_plan(lb_ready, targets="compiler1")
    assert again.ok and not again.changed  # idempotent


def test_noop_says_what_it_would_do_and_changes_nothing():
    fleet = Fleet()
    fleet.admin[C1] = 1
    fleet.files[(LB, RECORD)] = out_by("rotate_lb_member")
    results = with_health(fleet, "running", noop=True).run_plan(lb_ready, targets="compiler1")
    assert "would put back compiler1" in results.find(LB).message
    assert fleet.admin[C1] == 1 and (LB, RECORD) in fleet.files


def test_an_unhealthy_member_is_refused_and_stays_out_with_its_record():
    fleet = Fleet()
    fleet.admin[C1] = 1
    fleet.files[(LB, RECORD)] = out_by("rotate_lb_member")
    t = starting(fleet, running=False)
    row = t.run_plan(lb_ready, targets="compiler1").find(C1)
    assert row.status == "failed" and "Puppet Server is not healthy" in row.message
    assert fleet.admin[C1] == 1 and (LB, RECORD) in fleet.files


def test_a_member_whose_server_is_still_starting_goes_back_once_it_is_healthy():
    fleet = Fleet()
    fleet.admin[C1] = 1
    fleet.files[(LB, RECORD)] = out_by("rotate_lb_member")
    t = starting(fleet, True, 4, 4, 0)  # not yet, twice, then healthy
    results = t.run_plan(lb_ready, targets="compiler1")
    assert results.ok, results.details()
    assert fleet.admin[C1] == 0 and (LB, RECORD) not in fleet.files
    assert len([c for c in t.commands(C1) if STARTED.match(c)]) == 3


def test_a_member_whose_server_does_not_finish_starting_stays_out():
    fleet = Fleet()
    fleet.admin[C1] = 1
    fleet.files[(LB, RECORD)] = out_by("rotate_lb_member")
    t = starting(fleet, True).on(STARTED, exit_code=4, targets=[C1])  # never healthy
    t.on(re.compile(r"tail -n 15 "), stdout="Initializing the JRuby pool", targets=[C1])
    row = t.run_plan(lb_ready, targets="compiler1", up_timeout=0.5).find(C1)
    assert row.status == "failed" and "Puppet Server is still starting" in row.message, row
    assert "was not ready after" in row.message
    assert fleet.admin[C1] == 1 and (LB, RECORD) in fleet.files


def unreasoned(plan: str) -> str:
    """A record as puppetops wrote it before reasons were recorded: no ``why.reason``."""
    return json.dumps({"member": C1, "who": "ops@admin1", "when": "2026-11-28T07:00:00Z",
                       "run": "0123456789ab", "why": {"plan": plan}}) + "\n"


@pytest.mark.reliability(fault="an out record written by an older puppetops (no reason in it)",
                         outcome="read with the reason it then meant: a deploy_code drain stays "
                                 "out for deploy_code, any other goes back once healthy")
@pytest.mark.parametrize("plan, reason, back", [("deploy_code", CODE_DIFFERS, False),
                                                ("rotate_lb_member", MAINTENANCE, True)])
def test_a_record_from_before_reasons_keeps_the_reason_it_meant(plan, reason, back):
    assert OutRecord.from_json(unreasoned(plan)).reason == reason
    fleet = Fleet()
    fleet.admin[C1] = 8
    fleet.files[(LB, RECORD)] = unreasoned(plan)
    results = with_health(fleet, "running").run_plan(lb_ready, targets="compiler1")
    assert (fleet.admin[C1] == 0) is back and ((LB, RECORD) not in fleet.files) is back
    assert results.ok is back, results.details()


def test_a_member_deploy_code_drained_is_left_to_deploy_code():
    fleet = Fleet()
    fleet.admin[C1] = 8
    fleet.files[(LB, RECORD)] = out_by("deploy_code", CODE_DIFFERS, "production")
    messages = Messages()
    results = with_health(fleet, "running", output=Output(messages)).run_plan(
        lb_ready, targets="compiler1")
    assert "invoke deploy-code --env production" in results.find(C1).message
    assert fleet.admin[C1] == 8
    assert any(t.startswith(f"warning: {C1} is out of load balancing on {LB} (drain), taken out "
                            "by deploy_code (production differs) in run 0123456789ab")
               for t in messages.texts), messages.texts
