"""deploy_code's decisions without hosts: deploy, compare, then flush — or drain and report.

A small simulated fleet answers the plan's commands (deploy records, r10k/g10k, the admin
API, HAProxy's runtime API), so each test states a situation and checks what the plan did.
"""
from __future__ import annotations

import json
import re

import pytest

from fake_fleet import C1, C2, INVENTORY, LB, MAIN, NEW, OLD, OTHER, SERVERS, Fleet, planner
from puppetops import UsageError
from puppetops.plans.deploy_code import branches, deploy_code, environment_list
from puppetops.puppet import consistency
from puppetops.puppet.deployers import Deployed, parse_record

def by_target(results):
    return {r.target: r for r in results}


def test_a_consistent_deploy_flushes_every_server_once():
    fleet = Fleet()
    results = planner(fleet).run_plan(deploy_code)
    assert results.ok
    assert sorted(t for t, _ in fleet.deploy_commands) == sorted(SERVERS)
    assert all(c.endswith("r10k deploy environment production") for _, c in fleet.deploy_commands)
    assert sorted(fleet.flushes) == sorted(SERVERS)
    assert not [c for c in fleet.lb_commands if c.startswith("set server")]
    rows = by_target(results)
    for server in SERVERS:
        assert rows[server].status == "changed"
        assert rows[server].value == {"production": NEW}
        assert rows[server].message.startswith(f"production at {NEW[:12]}")


def test_a_consistent_deploy_costs_each_server_eight_commands():
    """facts, deployer check, record before and after the deploy, the deploy, and the flush's
    read / DELETE + marker / check: no read repeated for the comparison or the flush."""
    fleet = Fleet()
    t = planner(fleet)
    assert t.run_plan(deploy_code).ok
    for server in SERVERS:
        commands = [c.command for c in t.script.calls
                    if c.target == server and "refs/heads" not in c.command]
        assert len(commands) == 8, commands
    heads_read = [c.command for c in t.script.calls if "refs/heads" in c.command]
    assert len(heads_read) == 1 and "for-each-ref" in heads_read[0]  # in place, no SSH to itself


def test_a_rerun_with_nothing_new_neither_deploys_nor_flushes():
    fleet = Fleet()
    planner(fleet).run_plan(deploy_code)
    fleet.deploy_commands.clear()
    fleet.flushes.clear()
    results = planner(fleet).run_plan(deploy_code)
    assert results.ok and not results.changed
    assert fleet.deploy_commands == [] and fleet.flushes == []


def test_a_failed_deploy_flushes_nothing_and_drains_that_compiler():
    fleet = Fleet()
    fleet.broken[C2] = "ERROR -> Unable to determine current branches for Git source 'puppet'"
    results = planner(fleet).run_plan(deploy_code)
    assert not results.ok
    assert fleet.flushes == []
    assert f"set server puppet_compilers/{C2} state drain" in fleet.lb_commands
    assert fleet.admin == {C1: 0, C2: 8}
    rows = by_target(results)
    assert rows[C2].status == "failed" and rows[C2].value == {"production": OLD}
    assert f"production at {OLD[:12]}" in rows[C2].message
    assert "Unable to determine current branches" in rows[C2].message
    assert rows[MAIN].ok and rows[C1].ok and rows[C1].value == {"production": NEW}
    assert fleet.files[(LB, f"/var/lib/puppetops/lb-out/{C2}")] == "deploy_code production\n"


def test_a_server_at_another_commit_is_off_even_if_its_deploy_succeeded():
    fleet = Fleet()
    fleet.deploys_to[C1] = OTHER  # e.g. a mirror that lags behind
    results = planner(fleet).run_plan(deploy_code)
    assert not results.ok and fleet.flushes == []
    assert fleet.admin == {C1: 8, C2: 0}
    assert f"production at {OTHER[:12]} (expected {NEW[:12]})" in by_target(results)[C1].message


def test_drain_false_leaves_the_load_balancer_alone():
    fleet = Fleet()
    fleet.broken[C2] = "fatal: could not read from remote repository"
    results = planner(fleet).run_plan(deploy_code, drain=False)
    assert not results.ok and fleet.flushes == []
    assert not [c for c in fleet.lb_commands if c.startswith("set server")]


def test_the_last_serving_compiler_is_never_drained():
    fleet = Fleet()
    fleet.broken[C1] = fleet.broken[C2] = "fatal: could not read from remote repository"
    results = planner(fleet).run_plan(deploy_code)
    assert fleet.admin == {C1: 0, C2: 0}
    assert "no other member would be serving" in by_target(results)[LB].message


def test_a_later_consistent_deploy_puts_back_what_it_drained():
    fleet = Fleet()
    fleet.broken[C2] = "fatal: could not read from remote repository"
    planner(fleet).run_plan(deploy_code)
    fleet.admin[C1] = 1  # an operator took compiler1 out by hand meanwhile: not ours to undo
    del fleet.broken[C2]
    results = planner(fleet).run_plan(deploy_code)
    assert results.ok
    assert sorted(fleet.flushes) == sorted(SERVERS)
    assert fleet.admin == {C1: 1, C2: 0}
    assert (LB, f"/var/lib/puppetops/lb-out/{C2}") not in fleet.files


def test_a_failed_flush_is_done_by_the_next_run():
    fleet = Fleet()
    t = planner(fleet)
    t.on(re.compile(r"curl .*environment-cache"), stdout="503", targets=[C1], times=3)
    first = t.run_plan(deploy_code)
    assert not first.ok and C1 not in fleet.flushes
    fleet.flushes.clear()
    planner(fleet).run_plan(deploy_code)
    assert fleet.flushes == [C1]


@pytest.mark.parametrize("bad", ["../etc", "a;reboot", "prod uction", "$(id)", "x/y", "",
                                 "all,production"])
def test_environment_names_that_could_escape_are_refused_before_anything_runs(bad):
    fleet = Fleet()
    t = planner(fleet)
    with pytest.raises(UsageError):
        t.run_plan(deploy_code, env=bad)
    assert t.script.calls == []


def test_a_branch_the_control_repo_lacks_is_a_usage_error():
    fleet = Fleet()
    with pytest.raises(UsageError, match="no branch staging"):
        planner(fleet).run_plan(deploy_code, env="staging")
    assert fleet.deploy_commands == []


def test_noop_says_which_servers_would_change_commit():
    fleet = Fleet()
    fleet.records[C1]["production"] = NEW
    results = planner(fleet, noop=True).run_plan(deploy_code)
    rows = by_target(results)
    assert rows[C1].status == "unchanged"
    for server in (MAIN, C2):
        assert rows[server].status == "changed" and rows[server].noop
        assert f"would deploy production ({OLD[:10]} → {NEW[:10]})" in rows[server].message
    assert fleet.deploy_commands == [] and fleet.flushes == [] and fleet.files == {}


def test_all_deploys_every_branch_r10k_accepts():
    fleet = Fleet({"production": NEW, "dev": OTHER, "feature/x": OLD})
    for server in SERVERS:
        fleet.records[server]["dev"] = None
    results = planner(fleet).run_plan(deploy_code, env="all")
    assert results.ok
    deployed = {(t, re.search(r"environment (\S+)", c).group(1)) for t, c in fleet.deploy_commands}
    assert deployed == {(s, e) for s in SERVERS for e in ("production", "dev")}
    assert by_target(results)[C1].value == {"production": NEW, "dev": OTHER}


def test_modules_always_run_the_deployer_with_its_module_flags():
    fleet = Fleet()
    planner(fleet).run_plan(deploy_code)
    fleet.deploy_commands.clear()
    planner(fleet).run_plan(deploy_code, incremental=True)
    assert len(fleet.deploy_commands) == 3
    assert all(c.endswith("deploy environment production -m --incremental")
               for _, c in fleet.deploy_commands)


def test_g10k_servers_run_g10k_and_report_its_record():
    inventory = json.loads(json.dumps(INVENTORY))
    inventory["groups"][1]["vars"] = {"code_deployer": "g10k"}
    fleet = Fleet()
    results = planner(fleet, inventory=inventory).run_plan(deploy_code)
    assert results.ok
    commands = dict(fleet.deploy_commands)
    assert "g10k -config /etc/puppetlabs/r10k/r10k.yaml" in commands[C1]
    assert "-branch production" in commands[C1] and "r10k" in commands[MAIN].split()[2]


# -- the pure parts ------------------------------------------------------------------------

def test_environment_list():
    assert environment_list("production, dev,production") == ["production", "dev"]
    assert environment_list("all") is None
    assert environment_list(["a_1"]) == ["a_1"]


def test_branches_from_ls_remote():
    text = f"{NEW}\trefs/heads/production\n{OLD}\trefs/heads/feature/x\n{OTHER}\tHEAD\n"
    assert branches(text) == {"production": NEW, "feature/x": OLD}


def test_deploy_records_of_both_tools():
    r10k = '{"signature": "%s", "deploy_success": true, "finished_at": "2026-11-25 19:36:03 +0000"}'
    assert parse_record(r10k % NEW) == Deployed(NEW, True, "2026-11-25 19:36:03 +0000")
    g10k = ('{"name": "production", "signature": "%s", "deploy_success": false, '
            '"finished_at": "2026-11-25T19:37:55Z", "puppetfile_checksum": "x"}')
    assert parse_record(g10k % NEW) == Deployed(NEW, False, "2026-11-25T19:37:55Z")
    assert parse_record(None) is None and parse_record("{not json") is None


def test_verdict_report_names_each_server_and_commit():
    verdict = consistency.judge(
        {"production": NEW}, SERVERS,
        {MAIN: {"production": Deployed(NEW, True)}, C1: {"production": Deployed(OLD, True)}},
        {(C1, "production"): "r10k exited 1: fatal: boom"}, {C2: "unreachable"})
    assert not verdict.consistent and verdict.off == [C1, C2]
    assert verdict.report().splitlines() == [
        f"{MAIN}: production at {NEW[:12]}",
        f"{C1}: production at {OLD[:12]} (deploy failed: r10k exited 1: fatal: boom)",
        f"{C2}: production at no commit (unreadable: unreachable)",
    ]
