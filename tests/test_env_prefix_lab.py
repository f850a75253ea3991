"""End to end on the stood-up lab: under r10k's source prefix (inventory var r10k_prefix), the
stand-up writes ``prefix:`` into r10k.yaml on every server, a pushed branch goes — through the
webhook's plan runner, with the webhook's own branch → environment mapping — to
``PREFIX_branch`` on main and both compilers, and its deletion removes that environment.

The shared infrastructure runs without a prefix: its r10k.yaml is put back and the prefixed
environments removed afterwards, whatever happened."""
from __future__ import annotations

import base64
import json
import uuid

import pytest
import yaml

from puppetops import Inventory, Run
from puppetops.flow import Cohort
from puppetops.output import LogFileOutput, Output
from puppetops.plans import deploy_code
from puppetops.puppet import LAYOUTS, names
from puppetops.steps.code import provision
from puppetops.steps.code.control_repo import ControlRepoCommit
from puppetops.steps.code.deploy import FLUSH_MARKERS
from puppetops.steps.code.provision import DEFAULT_REPO
from puppetops.steps.code.resource_types import MARKERS as TYPES_MARKERS
from puppetops.steps.facts import gather
from puppetops.webhook.deploy import PlanRunner, inventory_prefix
from puppetops.webhook.environments import environment_for

pytestmark = pytest.mark.lab

PREFIX = "acme"
SERVERS = ("main", "compiler1", "compiler2")
R10K_YAML = LAYOUTS["debian"].r10k_config
ENVIRONMENTS = LAYOUTS["debian"].environmentpath


def prefixed_inventory(infra, tmp_path) -> str:
    """The lab's inventory with ``r10k_prefix`` set for every host (main's is the one read)."""
    document = yaml.safe_load(open(infra.lab.inventory, encoding="utf-8"))
    document["vars"] = {**document.get("vars", {}), "r10k_prefix": PREFIX}
    path = tmp_path / "inventory.yaml"
    path.write_text(yaml.safe_dump(document))
    return str(path)


def restore(infra, saved: dict[str, str]) -> None:
    """r10k.yaml as it was, and no prefixed environment, flush or types marker left."""
    for server, text in saved.items():
        data = base64.b64encode(text.encode()).decode()
        infra.ssh(server, f"echo {data} | base64 -d > {R10K_YAML}.tmp && "
                          f"mv {R10K_YAML}.tmp {R10K_YAML}")
        infra.ssh(server, f"rm -rf {ENVIRONMENTS}/{PREFIX}_* {FLUSH_MARKERS}/{PREFIX}_* "
                          f"{TYPES_MARKERS}/{PREFIX}_*")


def test_a_push_lands_in_prefix_branch_on_main_and_both_compilers(infrastructure, tmp_path):
    infra = infrastructure
    branch = f"pfx_{uuid.uuid4().hex[:8]}"
    inventory = prefixed_inventory(infra, tmp_path)
    saved = {server: infra.ssh(server, f"cat {R10K_YAML}") for server in SERVERS}
    infra.ssh("main", f"git --git-dir={DEFAULT_REPO} branch -f {branch} production")
    try:
        with Run(Inventory.load(inventory), output=Output(LogFileOutput(str(infra.log)))) as run:
            main, servers = run.targets("main")[0], run.targets("main,compilers")
            run.each("facts", gather, servers)
            # the stand-up's code part (bootstrap_ca, add_compiler): r10k.yaml with the prefix
            provision.deploy(Cohort(run, servers, stop=True), main, "production")
            head = run.step(ControlRepoCommit(DEFAULT_REPO, {"prefix.txt": branch},
                                              f"{branch} commit", branch=branch),
                            [main])[0].value
        for server in SERVERS:
            config = yaml.safe_load(infra.ssh(server, f"cat {R10K_YAML}"))
            assert config["sources"][names.R10K_SOURCE]["prefix"] == PREFIX, config

        prefix = inventory_prefix(inventory, "main")
        environment = environment_for(branch, prefix)  # what the webhook deploys for the push
        assert (prefix, environment) == (PREFIX, f"{PREFIX}_{branch}")
        runner = PlanRunner(inventory)
        outcome = runner.deploy(environment, head)
        assert outcome.ok, outcome.error
        for server in SERVERS:
            record = json.loads(infra.ssh(
                server, f"cat {ENVIRONMENTS}/{environment}/.r10k-deploy.json"))
            assert record["signature"] == head and record["deploy_success"], (server, record)
            assert infra.ssh(server, f"cat {ENVIRONMENTS}/{environment}/prefix.txt") == branch
            assert not infra.ssh(server, f"ls -d {ENVIRONMENTS}/{branch} 2>/dev/null || true")
        assert {r["target"].split(".")[0]: r["value"] for r in outcome.result["servers"]
                if r["value"]} == {s: {environment: head} for s in SERVERS}

        infra.ssh("main", f"git --git-dir={DEFAULT_REPO} branch -D {branch}")
        removed = runner.remove(environment)  # the delete event
        assert removed.ok, removed.error
        for server in SERVERS:
            assert not infra.ssh(server, f"ls -d {ENVIRONMENTS}/{environment} 2>/dev/null "
                                         "|| true"), server
    finally:
        infra.ssh("main", f"git --git-dir={DEFAULT_REPO} branch -D {branch} 2>/dev/null; true")
        restore(infra, saved)
        # r10k purged every environment outside the prefix (production included: its deploys
        # purge the basedir of environments its sources do not have); deploy them again
        with infra.run() as run:
            assert deploy_code(run, env="all").ok
    for server in SERVERS:  # the shared infrastructure as it was
        assert infra.ssh(server, f"cat {R10K_YAML}") == saved[server]
        assert infra.ssh(server, f"cat {ENVIRONMENTS}/production/.r10k-deploy.json")
