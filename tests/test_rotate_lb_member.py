"""rotate_lb_member's safety rules and the LB runtime parsing, without hosts."""
from __future__ import annotations

import json
import re
import signal

import pytest

from fake_fleet import C1, C2, LB, Fleet, Messages, planner
from puppetops import UsageError
from puppetops.errors import Interrupted
from puppetops.output import Output
from puppetops.plans.rotate_lb_member import rotate_lb_member
from puppetops.steps import maintenance
from puppetops.steps.lb import haproxy, nginx
from puppetops.steps.lb.backend import DRAIN, MAINT, READY, MemberState
from puppetops.steps.lb.haproxy import HaproxyMembersUp
from puppetops.steps.lb.membership import MembersIdle, MembersReady, refusal
from puppetops.steps.lb.out_records import CODE_DIFFERS, MAINTENANCE, OutRecord
from puppetops.steps.lb.pool import Member


RECORDS = "/var/lib/puppetops/lb-out"


def states(**given: tuple[str, bool]) -> dict[str, MemberState]:
    return {n: MemberState(n, admin, up, 0) for n, (admin, up) in given.items()}


def test_a_member_may_go_only_while_another_serves():
    assert refusal(states(a=(READY, True), b=(READY, True)), ["a"]) is None
    assert "no other member" in refusal(states(a=(READY, True), b=(MAINT, False)), ["a"])
    assert "no other member" in refusal(states(a=(READY, True), b=(READY, False)), ["a"])
    assert "no other member" in refusal(states(a=(READY, True), b=(READY, True)), ["a", "b"])
    # one that serves nothing now may always go (it is already out, or down)
    assert refusal(states(a=(DRAIN, True), b=(MAINT, False)), ["a"]) is None


def test_rotating_while_the_other_compiler_is_out_is_refused_before_anything_changes():
    fleet = Fleet()
    fleet.admin[C2] = 1  # compiler2 in maintenance
    results = planner(fleet).run_plan(rotate_lb_member, targets="compiler1")
    assert not results.ok
    row = results.find(LB)
    assert "refusing to take out compiler1.example.com" in row.message
    assert not [c for c in fleet.lb_commands if c.startswith("set server")]


def record(plan: str, reason: str = MAINTENANCE, *environments: str,
           run: str = "0123456789ab") -> str:
    return OutRecord(plan, run, "ops@admin1", "2026-11-29T07:00:00Z", reason,
                     environments).to_json(C2) + "\n"


def test_records_from_before_reasons_were_recorded_keep_their_meaning():
    old = {"member": C2, "who": "ops@admin1", "when": "2026-11-29T07:00:00Z",
           "run": "0123456789ab"}
    drained = OutRecord.from_json(json.dumps(
        {**old, "why": {"plan": "deploy_code", "environments": ["production"]}}))
    rotated = OutRecord.from_json(json.dumps(
        {**old, "why": {"plan": "rotate_lb_member", "environments": []}}))
    assert (drained.reason, drained.environments) == (CODE_DIFFERS, ("production",))
    assert rotated.reason == MAINTENANCE
    assert OutRecord.from_json(json.dumps(
        {**old, "why": {"plan": "x", "reason": "because"}})).plan == "unreadable record"


@pytest.mark.parametrize("plan", ["deploy_code", "a_site_plan"])
def test_a_member_out_because_its_code_differs_is_not_rotated_back_in(plan):
    """The reason recorded decides, not which plan took the member out."""
    fleet = Fleet()
    fleet.admin[C2] = 8
    fleet.files[(LB, f"{RECORDS}/{C2}.json")] = record(plan, CODE_DIFFERS, "production")
    results = planner(fleet).run_plan(rotate_lb_member, targets="compiler2")
    assert "run deploy_code first" in results.find(LB).message
    assert "invoke deploy-code --env production" in results.find(LB).message
    assert fleet.admin[C2] == 8


@pytest.mark.reliability(fault="rotation while the only other member is out (an earlier run "
                               "was killed)",
                         outcome="refused before anything changes; the message names who took "
                                 "it out, why, when, and the command that puts it back")
def test_the_refusal_says_why_the_other_member_is_out_and_how_to_put_it_back():
    fleet = Fleet()
    fleet.admin[C2] = 1
    fleet.files[(LB, f"/var/lib/puppetops/lb-out/{C2}.json")] = record("rotate_lb_member")
    results = planner(fleet).run_plan(rotate_lb_member, targets="compiler1")
    message = results.find(LB).message
    assert "refusing to take out compiler1.example.com" in message
    assert (f"{C2} is maint, taken out by rotate_lb_member in run 0123456789ab, ops@admin1, "
            "2026-11-29T07:00:00Z") in message
    assert f"`invoke lb-ready --targets {C2}` puts it back" in message
    assert fleet.admin == {C1: 0, C2: 1}


def test_an_unknown_action_is_a_usage_error_before_anything_runs():
    with pytest.raises(UsageError, match="neither restart nor upgrade nor a plan"):
        maintenance.action("reboot_everything")
    assert callable(maintenance.action("facts"))  # any plan taking targets


def test_haproxy_servers_state_parsing():
    text = ("1\n# be_id be_name srv_id srv_name srv_addr srv_op_state srv_admin_state\n"
            "3 puppet_compilers 1 c1 10.0.0.1 2 8\n4 other 1 x 10.0.0.9 2 0\n")
    rows = haproxy.parse_servers_state(text)
    assert list(rows) == ["c1"] and rows["c1"]["srv_admin_state"] == "8"
    assert haproxy.admin_state(8) == DRAIN and haproxy.admin_state(1 | 8) == MAINT
    assert haproxy.admin_state(0) == READY


def test_nginx_members_are_marked_down_and_back_in_place():
    text = nginx.render([Member("c1.example.com", "10.0.0.1"),
                         Member("c2.example.com", "10.0.0.2")])
    down = nginx.mark(text, "c1.example.com", True)
    assert "server 10.0.0.1:8140 max_fails=3 fail_timeout=30s down;  # c1.example.com" in down
    assert "10.0.0.2:8140 max_fails=3 fail_timeout=30s;" in down
    assert nginx.parse_members(down) == nginx.parse_members(text)
    assert nginx.mark(down, "c1.example.com", True) == down
    assert nginx.mark(down, "c1.example.com", False) == text


def interrupted_rotation(health: str) -> tuple[Fleet, list[str]]:
    """compiler1 rotated; SIGINT arrives during its maintenance action."""
    fleet, messages = Fleet(), Messages()
    tester = planner(fleet, output=Output(messages))
    tester.on(re.compile(r"curl -sk .*/status/v1/simple"), stdout=health, targets=[C1])

    def action(run, targets):
        assert fleet.admin[C1] == 1 and (LB, f"{RECORDS}/{C1}.json") in fleet.files
        run.interrupt(signal.SIGINT)
    with pytest.raises(Interrupted):
        tester.run_plan(rotate_lb_member, targets="compiler1", action=action)
    return fleet, messages.texts


def test_an_interrupted_rotation_puts_a_healthy_member_back():
    fleet, messages = interrupted_rotation("running")
    assert fleet.admin == {C1: 0, C2: 0}
    assert (LB, f"{RECORDS}/{C1}.json") not in fleet.files
    assert f"rotate_lb_member: interrupted; {C1} serving in load balancing again" in messages


def test_an_interrupted_rotation_leaves_an_unhealthy_member_out_and_says_how_to_recover():
    fleet, messages = interrupted_rotation("")
    assert fleet.admin == {C1: 1, C2: 0}
    record = json.loads(fleet.files[(LB, f"{RECORDS}/{C1}.json")])
    assert record["why"]["plan"] == "rotate_lb_member"
    assert any(f"`invoke lb-ready --targets {C1}` puts it back" in m for m in messages), messages


# -- the waits of the membership steps, run out ----------------------------------------------

@pytest.mark.reliability(fault="a member set ready never passes its health check",
                         outcome="after the wait it is in maintenance again with an out record; "
                                 "the step fails naming it")
def test_a_member_that_never_serves_is_put_back_in_maintenance_with_a_record():
    fleet = Fleet()
    fleet.admin[C1] = 1
    fleet.failing_check.add(C1)
    record = OutRecord("rotate_lb_member", "0123456789ab", "ops@admin1", "2026-11-29T07:00:00Z")
    results = planner(fleet).run.step(MembersReady({LB: [C1]}, wait=0, record=record),
                                      "loadbalancers", catch_errors=True)
    row = results.find(LB)
    assert row.status == "failed" and "put back in maintenance: compiler1.example.com" in row.message
    assert f"set server puppet_compilers/{C1} state ready" in fleet.lb_commands
    assert fleet.admin[C1] == 1 and (LB, f"{RECORDS}/{C1}.json") in fleet.files


def test_members_still_holding_sessions_after_the_wait_fail_the_step():
    fleet = Fleet()
    fleet.admin[C1] = 8
    fleet.sessions[C1] = 3
    results = planner(fleet).run.step(MembersIdle({LB: [C1]}, wait=0), "loadbalancers",
                                      catch_errors=True)
    row = results.find(LB)
    assert row.status == "failed" and f"still busy after 0s: {C1} (3 session(s))" in row.message
    fleet.sessions[C1] = 0
    again = planner(fleet).run.step(MembersIdle({LB: [C1]}, wait=0), "loadbalancers")
    assert again.ok and not again.changed


def test_haproxy_members_not_up_after_the_wait_fail_the_step():
    fleet = Fleet()
    fleet.admin[C1] = 1
    fleet.failing_check.add(C1)
    tester = planner(fleet).on(re.compile(r"^\[ -S "))
    results = tester.run.step(HaproxyMembersUp({LB: [C1]}, timeout=0), "loadbalancers",
                              catch_errors=True)
    row = results.find(LB)
    assert row.status == "failed" and f"not UP after 0s: {C1} (DOWN L7STS)" in row.message
    assert fleet.admin[C1] == 0  # it was set ready; only its check keeps it down
