"""remove_environment's decisions without hosts (the simulated fleet of test_deploy_code): one
deleted branch's environment leaves every server, and never while its branch exists. The
webhook runs this plan for a delete event; on the lab, tests/test_webhook_lab.py."""
from __future__ import annotations

import pytest

from fake_fleet import C1, C2, INVENTORY, MAIN, NEW, OTHER, Fleet, planner
from puppetops import UsageError
from puppetops.plans.remove_environment import BranchExists, remove_environment


def test_the_environment_leaves_every_server_that_has_it_and_its_cache_is_flushed():
    fleet = Fleet({"production": NEW})
    for server in (MAIN, C1, C2):
        fleet.stale[server] = {"feature_x", "old"}
    results = planner(fleet).run_plan(remove_environment, env="feature_x")
    assert results.ok
    assert sorted(fleet.purged) == [(C1, "feature_x"), (C2, "feature_x"), (MAIN, "feature_x")]
    assert sorted(fleet.flushes) == sorted([MAIN, C1, C2])
    # other stale environments are deploy_code --env all's business, not this removal's
    assert all(fleet.stale[s] == {"old"} for s in (MAIN, C1, C2))
    assert all("purge stale environments feature_x" in r.message for r in results)


def test_a_second_removal_changes_nothing():
    fleet = Fleet({"production": NEW})
    fleet.stale[C1] = {"feature_x"}
    assert planner(fleet).run_plan(remove_environment, env="feature_x").ok
    again = planner(fleet).run_plan(remove_environment, env="feature_x")
    assert again.ok and {r.status for r in again} == {"unchanged"}
    assert fleet.purged == [(C1, "feature_x")]


@pytest.mark.reliability(fault="a branch-delete event for a branch that exists (replayed old "
                               "signed body, or delivered after the branch was pushed again)",
                         outcome="refused before anything is removed, naming the branch")
@pytest.mark.parametrize("heads,prefix", [({"production": NEW, "feature_x": OTHER}, None),
                                          ({"production": NEW, "x": OTHER}, "feature")])
def test_an_environment_whose_branch_exists_is_never_removed(heads, prefix):
    fleet = Fleet(heads)
    fleet.stale[C1] = {"feature_x"}
    inventory = {**INVENTORY, "vars": {**INVENTORY["vars"], "r10k_prefix": prefix}}
    with pytest.raises(BranchExists, match="environment feature_x not removed: the control "
                                           "repo still has branch") as refused:
        planner(fleet, inventory=inventory).run_plan(remove_environment, env="feature_x")
    assert refused.value.commit == OTHER  # the webhook deploys that instead
    assert fleet.purged == [] and fleet.flushes == []


def test_a_control_repo_without_branches_removes_nothing():
    fleet = Fleet()
    fleet.heads.clear()
    fleet.stale[C1] = {"feature_x"}
    with pytest.raises(UsageError, match="lists no branches") as refused:
        planner(fleet).run_plan(remove_environment, env="feature_x")
    assert not isinstance(refused.value, BranchExists)
    assert fleet.purged == [] and fleet.flushes == []


def test_noop_says_what_would_be_removed_and_removes_nothing():
    fleet = Fleet({"production": NEW})
    fleet.stale[C2] = {"feature_x"}
    results = planner(fleet, noop=True).run_plan(remove_environment, env="feature_x")
    assert "would purge stale environments feature_x" in {r.target: r for r in results}[C2].message
    assert fleet.purged == [] and fleet.stale[C2] == {"feature_x"}


@pytest.mark.parametrize("bad", ["../x", "a;b", "production/../x", ""])
def test_names_that_could_escape_are_refused_before_anything_runs(bad):
    fleet = Fleet({"production": NEW})
    with pytest.raises(UsageError):
        planner(fleet).run_plan(remove_environment, env=bad)
    assert fleet.purged == []


def test_under_a_source_prefix_only_a_prefixed_environment_whose_branch_is_gone_goes():
    fleet = Fleet({"production": NEW, "feature_y": OTHER})
    fleet.stale[C1] = {"acme_feature_x", "acme_feature_y", "feature_x"}
    inventory = {**INVENTORY, "vars": {**INVENTORY["vars"], "r10k_prefix": "acme"}}
    with pytest.raises(UsageError, match="'feature_x' is not acme_<branch>"):
        planner(fleet, inventory=inventory).run_plan(remove_environment, env="feature_x")
    with pytest.raises(BranchExists, match="branch feature_y"):
        planner(fleet, inventory=inventory).run_plan(remove_environment, env="acme_feature_y")
    assert fleet.purged == []
    assert planner(fleet, inventory=inventory).run_plan(remove_environment,
                                                        env="acme_feature_x").ok
    assert fleet.purged == [(C1, "acme_feature_x")]
