"""r10k's source prefix (inventory var ``r10k_prefix`` for main): a branch is the environment
``PREFIX_branch`` as r10k names it (r10k 3.15's Environment::Name#dirname: ``true`` → the
source's name, a string → that string), and the stand-up's r10k.yaml, deploy_code,
remove_environment and the webhook all map it the same way. On the lab:
tests/test_deploy_guarantees_e2e.py (a prefixed deploy lands on main and both compilers)."""
from __future__ import annotations

import pytest
import yaml

from fake_fleet import C1, C2, INVENTORY, MAIN, NEW, OLD, SERVERS, Fleet, planner
from puppetops import Inventory, UsageError
from puppetops.plans.deploy_code import chosen_heads, deploy_code
from puppetops.puppet import names, node
from puppetops.steps.code.r10k import r10k_yaml
from puppetops.target import Target
from puppetops.webhook.config import WebhookConfig
from puppetops.webhook.environments import RefusedName, environment_for
from puppetops.webhook.server import agreed_prefix


def with_prefix(prefix) -> dict:
    return {**INVENTORY, "vars": {**INVENTORY["vars"], "r10k_prefix": prefix}}


def test_a_branch_is_prefix_underscore_branch_and_back():
    assert names.prefixed("production") == "production"
    assert names.prefixed("production", "acme") == "acme_production"
    assert names.branch_of("acme_production", "acme") == "production"
    assert names.branch_of("acme_acme_x", "acme") == "acme_x"
    assert names.branch_of("production", "") == "production"
    for env in ("production", "acme_", "acmeproduction", "other_production"):
        with pytest.raises(UsageError, match="is not acme_<branch>"):
            names.branch_of(env, "acme")
    assert names.environments_of(["production", "a-b", "dev"], "acme") == {
        "acme_production": "production", "acme_dev": "dev"}


@pytest.mark.reliability(fault="a branch whose environment name r10k refuses only once "
                               "prefixed (too long with the prefix), or a hostile prefix",
                         outcome="refused like any name r10k refuses: usage error, 422")
def test_r10ks_rule_applies_to_the_whole_prefixed_name():
    longest = "b" * 250
    assert names.prefixed(longest) == longest
    with pytest.raises(UsageError, match="at most 255"):
        names.prefixed(longest, "acme_x")  # 257 characters
    with pytest.raises(RefusedName):
        environment_for(longest, "acme_x")
    assert environment_for("production", "acme") == "acme_production"
    for bad in ("a;b", "a-b", "$(id)", "x\n"):
        with pytest.raises(UsageError, match="r10k_prefix must be"):
            node.r10k_prefix(Target("main", vars={"r10k_prefix": bad}))
    with pytest.raises(UsageError):
        node.r10k_prefix(Target("main", vars={"r10k_prefix": 7}))


def test_the_var_is_r10ks_setting_true_meaning_the_source_name():
    def prefix_of(value):
        return node.environment_prefix(Target("main", vars={"r10k_prefix": value}))
    assert prefix_of(True) == names.R10K_SOURCE == "puppet"
    assert prefix_of("acme") == "acme"
    assert prefix_of(False) == prefix_of(None) == prefix_of("") == ""
    for setting in (True, "acme"):
        source = yaml.safe_load(r10k_yaml("root@main:/srv/repo.git", "/envs", setting))
        assert source["sources"][names.R10K_SOURCE]["prefix"] == setting
    plain = yaml.safe_load(r10k_yaml("root@main:/srv/repo.git", "/envs"))
    assert "prefix" not in plain["sources"][names.R10K_SOURCE]


def test_deploy_code_deploys_the_branch_under_its_prefixed_environment():
    fleet = Fleet({"production": NEW, "dev": NEW})
    fleet.prefix = "acme"
    fleet.records = {s: {"acme_production": OLD} for s in SERVERS}
    results = planner(fleet, inventory=with_prefix("acme")).run_plan(deploy_code,
                                                                     env="acme_production")
    assert results.ok, results.details()
    assert {c.split("deploy environment ")[1] for _, c in fleet.deploy_commands} == \
        {"acme_production"}
    assert all(fleet.records[s]["acme_production"] == NEW for s in SERVERS)
    assert sorted(fleet.flushes) == sorted(SERVERS)
    assert f"acme_production at {NEW[:12]}" in {r.target: r for r in results}[C1].message


def test_env_all_deploys_every_branch_prefixed_and_purges_environments_without_a_branch():
    fleet = Fleet({"production": NEW, "dev": NEW})
    fleet.prefix = "puppet"  # r10k_prefix: true
    fleet.records = {s: {"puppet_production": OLD} for s in SERVERS}
    fleet.stale[C2] = {"puppet_gone", "puppet_dev_old"}
    assert planner(fleet, inventory=with_prefix(True)).run_plan(deploy_code, env="all").ok
    assert sorted({c.split("deploy environment ")[1] for _, c in fleet.deploy_commands}) == \
        ["puppet_dev", "puppet_production"]
    assert sorted(fleet.purged) == [(C2, "puppet_dev_old"), (C2, "puppet_gone")]


def test_a_name_without_the_prefix_or_without_a_branch_is_refused_before_anything_runs():
    fleet = Fleet()
    fleet.prefix = "acme"
    for env, why in (("production", "is not acme_<branch>"), ("acme_dev", "no branch dev")):
        with pytest.raises(UsageError, match=why):
            planner(fleet, inventory=with_prefix("acme")).run_plan(deploy_code, env=env)
    assert fleet.deploy_commands == []


def test_g10k_gets_the_branch_and_prefixes_it_itself():
    fleet = Fleet()
    fleet.prefix = "acme"
    fleet.records = {s: {"acme_production": OLD} for s in SERVERS}
    inventory = with_prefix("acme")
    inventory = {**inventory, "vars": {**inventory["vars"], "code_deployer": "g10k"}}
    assert planner(fleet, inventory=inventory).run_plan(deploy_code, env="acme_production").ok
    assert all(c.endswith("-branch production -quiet") for _, c in fleet.deploy_commands)
    assert fleet.records[MAIN]["acme_production"] == NEW


@pytest.mark.parametrize("prefix", ["", "acme", True])
def test_the_webhooks_mapping_is_deploy_codes(prefix):
    """Every branch the webhook maps to an environment is the environment deploy_code deploys
    that branch to, and no other."""
    heads = {b: NEW for b in ("production", "dev", "feature_x", "a-b", "x" * 252)}
    resolved = node.environment_prefix(Target("main", vars={"r10k_prefix": prefix}))
    chosen, skipped = chosen_heads(None, heads, resolved)
    webhook = {}
    for branch in heads:
        try:
            webhook[environment_for(branch, resolved)] = branch
        except RefusedName:
            assert branch in skipped
    assert {env: branch for env, (branch, _) in chosen.items()} == webhook
    for env, branch in webhook.items():
        assert chosen_heads([env], heads, resolved)[0] == {env: (branch, NEW)}


def test_the_webhook_takes_the_inventorys_prefix_and_refuses_another(tmp_path):
    inventory = tmp_path / "inventory.yaml"
    inventory.write_text(yaml.safe_dump(with_prefix("acme")))
    config = WebhookConfig(inventory=str(inventory))
    assert agreed_prefix(config).prefix == "acme"
    assert agreed_prefix(WebhookConfig(inventory=str(inventory), prefix="acme")).prefix == "acme"
    with pytest.raises(UsageError, match="r10k_prefix for main says 'acme'"):
        agreed_prefix(WebhookConfig(inventory=str(inventory), prefix="other"))
    inventory.write_text(yaml.safe_dump(INVENTORY))
    with pytest.raises(UsageError, match="says 'none'"):
        agreed_prefix(WebhookConfig(inventory=str(inventory), prefix="other"))
    assert Inventory.load(str(inventory)).get(MAIN)  # the file is a real inventory
