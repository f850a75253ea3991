"""deploy_code's decisions without hosts: deploy, compare, then flush — or drain and report.

A small simulated fleet answers the plan's commands (deploy records, r10k/g10k, the admin
API, HAProxy's runtime API), so each test states a situation and checks what the plan did.
"""
from __future__ import annotations

import io
import json
import re

import pytest

from fake_fleet import C1, C2, INVENTORY, LB, MAIN, NEW, OLD, OTHER, SERVERS, Fleet, planner
from puppetops import UsageError
from puppetops.output import JsonOutput
from puppetops.output.base import Outputter
from puppetops.plans.deploy_code import deploy_code, environment_list
from puppetops.steps.code import consistency
from puppetops.steps.code.deployers import Deployed, parse_record
from puppetops.steps.code.heads import branches

TYPES_MARKER = "/var/lib/puppetops/resource-types/production"
FLUSHED_MARKER = "/var/lib/puppetops/environment-cache/production"


def by_target(results):
    return {r.target: r for r in results}


class Said(Outputter):
    """The run's messages (warnings, verdicts), as the human and JSON outputs get them."""

    def __init__(self):
        self.texts: list[str] = []

    def message(self, text: str) -> None:
        self.texts.append(text)


def listening(tester):
    said = Said()
    tester.run.output.outputters.append(said)
    return tester, said


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


def test_a_consistent_deploy_costs_each_server_eleven_commands():
    """facts, the environment cache setting, deployer check, record (and types marker) before
    and after the deploy, the deploy, generating types, whether Puppet Server answers, and
    the flush's read / DELETE + marker / check: no read repeated for the comparison or the
    flush."""
    fleet = Fleet()
    t = planner(fleet)
    assert t.run_plan(deploy_code).ok
    for server in SERVERS:
        commands = [c.command for c in t.script.calls
                    if c.target == server and "refs/heads" not in c.command]
        assert len(commands) == 11, commands
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
    tester = planner(fleet)
    results = tester.run_plan(deploy_code)
    assert not results.ok
    assert fleet.flushes == []
    assert f"set server puppet_compilers/{C2} state drain" in fleet.lb_commands
    assert fleet.admin == {C1: 0, C2: 8}
    rows = by_target(results)
    assert rows[C2].status == "failed" and rows[C2].value == {"production": OLD}
    assert f"production at {OLD[:12]}" in rows[C2].message
    assert "Unable to determine current branches" in rows[C2].message
    assert rows[MAIN].ok and rows[C1].ok and rows[C1].value == {"production": NEW}
    record = json.loads(fleet.files[(LB, f"/var/lib/puppetops/lb-out/{C2}.json")])
    assert record["why"] == {"plan": "deploy_code", "reason": "code_differs",
                             "environments": ["production"]}
    assert record["member"] == C2 and record["run"] == tester.run.id and "@" in record["who"]
    written = [c.command for c in tester.script.calls if c.target == LB]
    assert written.index(next(c for c in written if "lb-out" in c and "cat >" in c)) < \
        written.index(next(c for c in written if "state drain" in c))  # recorded first


def test_a_server_at_another_commit_is_off_even_if_its_deploy_succeeded():
    fleet = Fleet()
    fleet.deploys_to[C1] = OTHER  # e.g. a mirror that lags behind
    results = planner(fleet).run_plan(deploy_code)
    assert not results.ok and fleet.flushes == []
    assert fleet.admin == {C1: 8, C2: 0}
    assert f"production at {OTHER[:12]} (expected {NEW[:12]})" in by_target(results)[C1].message


def test_a_server_whose_puppet_server_does_not_answer_is_off_and_nothing_is_flushed():
    fleet = Fleet()
    fleet.down.add(C2)
    results = planner(fleet).run_plan(deploy_code)
    assert not results.ok and fleet.flushes == []
    assert fleet.admin == {C1: 0, C2: 8}
    assert f"production at {NEW[:12]} (Puppet Server does not answer" in by_target(results)[C2].message
    fleet.down.clear()
    fleet.deploy_commands.clear()
    assert planner(fleet).run_plan(deploy_code).ok  # back: nothing to deploy, all flushed
    assert fleet.deploy_commands == [] and sorted(fleet.flushes) == sorted(SERVERS)
    assert fleet.admin == {C1: 0, C2: 0}


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
    assert (LB, f"/var/lib/puppetops/lb-out/{C2}.json") not in fleet.files


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
    fleet.files[(C1, TYPES_MARKER)] = f"{NEW} t0\n"  # and its types generated for that deploy
    fleet.files[(C1, FLUSHED_MARKER)] = f"{NEW} t0\n"  # and its cache flushed after it
    results = planner(fleet, noop=True).run_plan(deploy_code)
    rows = by_target(results)
    assert rows[C1].status == "unchanged"
    for server in (MAIN, C2):
        assert rows[server].status == "changed" and rows[server].noop
        assert f"would deploy production ({OLD[:10]} → {NEW[:10]})" in rows[server].message
        # what the real run does next, once every server would be at NEW: flush there
        assert "would flush the environment cache of production" in rows[server].message
        assert rows[server].message.startswith(f"production at {NEW[:12]}")
    assert fleet.deploy_commands == [] and fleet.flushes == [] and fleet.generated == []
    assert list(fleet.files) == [(C1, TYPES_MARKER), (C1, FLUSHED_MARKER)]


def test_noop_follows_the_real_runs_path_and_changes_nothing():
    """The plan never looks at noop: a noop run reads the verdict a real run would reach from
    its steps' results, so it says what that run would flush, drain or put back."""
    fleet = Fleet()
    fleet.broken[C2] = "fatal: could not read from remote repository"
    planner(fleet).run_plan(deploy_code)  # C2 drained
    del fleet.broken[C2]
    fleet.deploy_commands.clear()
    lb_before, files_before = list(fleet.lb_commands), dict(fleet.files)
    rows = by_target(planner(fleet, noop=True).run_plan(deploy_code))
    assert "would deploy production" in rows[C2].message
    assert "would flush the environment cache of production" in rows[C2].message
    assert "would " in rows[LB].message and C2 in rows[LB].message  # put back
    fleet.down.add(C1)  # now the real run would find C1 off: it would drain C1, flush nothing
    rows = by_target(planner(fleet, noop=True).run_plan(deploy_code))
    assert "flush" not in rows[C2].message and "would " in rows[LB].message
    assert C1 in rows[LB].message
    assert fleet.deploy_commands == [] and fleet.flushes == []
    assert [c for c in fleet.lb_commands if c.startswith("set server")] == \
        [c for c in lb_before if c.startswith("set server")]
    assert fleet.files == files_before and fleet.admin == {C1: 0, C2: 8}


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


# -- environment caching, drain choice, resource types, purge ---------------------------------

def test_a_server_without_unlimited_environment_timeout_is_warned_about_in_json_too():
    fleet = Fleet()
    fleet.timeouts[C1] = "0"
    t, out = planner(fleet), io.StringIO()
    t.run.output.outputters.append(JsonOutput(stdout=out))
    assert t.run_plan(deploy_code).ok
    t.run.close()
    warnings = [m for m in json.loads(out.getvalue())["messages"] if "warning" in m]
    assert len(warnings) == 1 and warnings[0].startswith(f"deploy_code: warning: {C1}: ")
    assert "environment_timeout is not unlimited (production: 0)" in warnings[0]
    assert "re-run add_compiler" in warnings[0] and "/etc/puppet/puppet.conf" in warnings[0]


def test_a_server_whose_cache_setting_cannot_be_read_is_warned_about_too():
    fleet = Fleet()
    t, said = listening(planner(fleet))
    t.on(re.compile(r"curl .*/puppet/v3/environments"), exit_code=7,
         stderr="curl: (7) Failed to connect", targets=[C2])
    assert t.run_plan(deploy_code).ok
    warnings = [m for m in said.texts if "warning" in m]
    assert len(warnings) == 1
    assert warnings[0].startswith(f"deploy_code: warning: {C2}: cannot read environment_timeout")
    assert "Failed to connect" in warnings[0]


def test_a_failed_deploy_of_an_environment_no_agents_use_drains_nobody_and_says_so():
    fleet = Fleet({"production": NEW, "dev": OTHER})
    fleet.broken[C2] = "fatal: could not read from remote repository"
    t, said = listening(planner(fleet))
    results = t.run_plan(deploy_code, env="dev")
    assert not results.ok and fleet.flushes == []
    assert fleet.admin == {C1: 0, C2: 0}
    assert any(m.startswith(f"deploy_code: not draining {C2}: off only for environments no "
                            f"agents use there (agent_environments: {C2}: production)")
               for m in said.texts)


def test_agent_environments_choose_which_failed_environments_drain():
    inventory = json.loads(json.dumps(INVENTORY))
    inventory["vars"]["agent_environments"] = ["production", "dev"]
    fleet = Fleet({"production": NEW, "dev": OTHER})
    fleet.broken[C2] = "fatal: could not read from remote repository"
    planner(fleet, inventory=inventory).run_plan(deploy_code, env="dev")
    assert fleet.admin == {C1: 0, C2: 8}


@pytest.mark.parametrize("bad", ["prod;reboot", "", ["../x"], 5])
def test_a_bad_agent_environments_var_is_refused_before_anything_runs(bad):
    inventory = json.loads(json.dumps(INVENTORY))
    inventory["vars"]["agent_environments"] = bad
    t = planner(Fleet(), inventory=inventory)
    if bad == "":  # empty: the default
        assert t.run_plan(deploy_code).ok
        return
    with pytest.raises(UsageError, match="agent_environments"):
        t.run_plan(deploy_code)
    assert t.script.calls == []


def test_types_are_generated_after_each_deploy_and_a_failure_withholds_the_flush():
    fleet = Fleet()
    fleet.types_broken[C2] = "Error: Failed to load custom type 'foo': syntax error"
    results = planner(fleet).run_plan(deploy_code)
    assert not results.ok and fleet.flushes == []
    assert set(fleet.generated) == {(s, "production") for s in SERVERS}
    row = by_target(results)[C2]
    assert "deploy failed: puppet generate types exited 1: Error: Failed to load" in row.message
    assert fleet.admin == {C1: 0, C2: 8}
    del fleet.types_broken[C2]
    fleet.deploy_commands.clear(), fleet.generated.clear()
    again = planner(fleet).run_plan(deploy_code)  # the commit is there: only the types run
    assert again.ok and fleet.deploy_commands == [] and fleet.generated == [(C2, "production")]
    assert sorted(fleet.flushes) == sorted(SERVERS) and fleet.admin == {C1: 0, C2: 0}


def test_env_all_purges_environments_whose_branch_is_gone_on_every_server():
    fleet = Fleet({"production": NEW, "dev": OTHER})
    fleet.stale[MAIN] = {"old_feature"}
    fleet.stale[C2] = {"old_feature", "hotfix"}
    t, said = listening(planner(fleet))
    results = t.run_plan(deploy_code, env="all")
    assert results.ok
    assert sorted(fleet.purged) == [(C2, "hotfix"), (C2, "old_feature"), (MAIN, "old_feature")]
    assert fleet.flushes.count(C2) == 2 + 2  # production, dev, and the two purged ones
    rows = by_target(results)
    assert "purge stale environments hotfix, old_feature" in rows[C2].message
    assert "purge" not in rows[C1].message
    assert f"deploy_code: purged environments whose branch is gone: {MAIN}: old_feature; " \
        f"{C2}: hotfix, old_feature" in said.texts


def test_noop_reports_what_would_be_purged_and_purges_nothing():
    fleet = Fleet()
    fleet.stale[C1] = {"old_feature"}
    results = planner(fleet, noop=True).run_plan(deploy_code, env="all")
    assert "would purge stale environments old_feature" in by_target(results)[C1].message
    assert fleet.purged == [] and fleet.stale[C1] == {"old_feature"}


def test_nothing_is_purged_for_a_named_environment_or_when_servers_differ():
    fleet = Fleet()
    fleet.stale[C1] = {"old_feature"}
    assert planner(fleet).run_plan(deploy_code, env="production").ok
    fleet.broken[C2] = "fatal: could not read from remote repository"
    fleet.heads["production"] = OTHER
    assert not planner(fleet).run_plan(deploy_code, env="all").ok
    assert fleet.purged == []


def test_a_control_repo_without_branches_purges_nothing():
    fleet = Fleet()
    fleet.heads.clear()
    fleet.stale[C1] = {"production_old"}
    t, said = listening(planner(fleet))
    t.run_plan(deploy_code, env="all")
    assert fleet.purged == []
    assert "deploy_code: the control repo lists no branches: purging nothing" in said.texts


def test_the_purge_listing_keeps_branches_and_invalid_names():
    from puppetops.steps.code.purge import parse_listing
    text = "d production\nd old\nd .git\nd a b\nm gone\nm old\nm production\nm x;y\nq z\n"
    assert parse_listing(text, frozenset({"production"})) == (["old"], ["gone"])


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
