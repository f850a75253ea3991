"""End to end on the stood-up lab: install_webhook puts the webhook on main, and a ``git push``
from the controller to the control repo on main is then the whole workflow — its post-receive
hook posts a signed push, the webhook (on main, over its own SSH key) runs deploy_code on main
and both compilers, caches are flushed, and the next agent run applies the commit.

The module leaves the session as it found it: the hook removed again, so the commits other
tests make on main's repo start no deploy behind their backs.
"""
from __future__ import annotations

import shlex
import time
import uuid

import pytest

from puppetops.lab.git_push import Checkout, get, last_job, wait_for_deploy, webhook_url
from puppetops.plans.install_webhook import USER, install_webhook
from puppetops.steps.code.provision import DEFAULT_REPO
from puppetops.steps.webhook_files import PATHS

from test_operate_e2e import (MOTD, SERVERS, agent_run, deployed_commit, flushes, fqdn,
                              site_pp)

pytestmark = pytest.mark.lab

ENVIRONMENTS = "/etc/puppet/code/environments"


@pytest.fixture(scope="module")
def webhook(infrastructure, tmp_path_factory):
    """install_webhook run once on the session's infrastructure: (its results, a checkout of
    the control repo on the controller, the main target, the webhook's base URL)."""
    infra = infrastructure
    with infra.run() as run:
        results = install_webhook(run)
        main = run.targets("main")[0]
    checkout = Checkout(main, tmp_path_factory.mktemp("control") / "control", DEFAULT_REPO)
    yield results, checkout, main, webhook_url(main)
    idle = time.monotonic() + 900
    while get(f"{webhook_url(main)}/health")["running"] and time.monotonic() < idle:
        time.sleep(1)
    # as the infrastructure fixture leaves it: the webhook serves, no hook posts to it
    infra.ssh("main", f"rm -f {DEFAULT_REPO}/hooks/post-receive")

def test_install_webhook_installs_and_starts_the_webhook_on_main(infrastructure, webhook):
    results, _, main, url = webhook
    assert results.ok, results.table()
    assert get(f"{url}/health")["status"] == "ok"  # from the controller, on main's address
    # its key reaches every server it deploys to, with host keys pinned, not scanned
    for short in (*SERVERS, "lb"):
        host = infrastructure.lab.host(short)
        out = infrastructure.ssh("main", f"ssh -F /dev/null -i {PATHS.key} -o BatchMode=yes "
                                         f"-o UserKnownHostsFile={PATHS.known_hosts} "
                                         f"-o StrictHostKeyChecking=yes root@{host.address} "
                                         "hostname")
        assert out.strip() == short
    assert infrastructure.ssh("main", f"stat -c %a {PATHS.secret} {PATHS.key}").split() == \
        ["600", "600"]


def test_the_webhook_runs_as_its_own_user_which_owns_only_its_files(infrastructure, webhook):
    """No root for the process that answers the network: it runs as USER, which owns its key,
    secret, inventory, history and log (and can read nothing else of root's); the pushes
    below prove it still deploys to every server, main included."""
    pid = infrastructure.ssh("main", f"cat {PATHS.pidfile}").strip()
    assert infrastructure.ssh("main", f"ps -o user= -p {pid}").strip() == USER
    owned = [PATHS.key, PATHS.secret, PATHS.inventory, PATHS.database, PATHS.log]
    assert infrastructure.ssh("main", f"stat -c %U {' '.join(owned)}").split() == \
        [USER] * len(owned)
    assert infrastructure.ssh("main", f"runuser -u {USER} -- cat /etc/shadow >/dev/null "
                                      "2>&1 && echo read || echo refused").strip() == "refused"


def test_a_git_push_from_the_controller_deploys_everywhere_and_agents_apply_it(
        infrastructure, webhook):
    infra = infrastructure
    _, checkout, _, url = webhook
    token = f"push-{uuid.uuid4().hex[:8]}"
    before = {s: flushes(infra, s) for s in SERVERS}
    head = checkout.commit({"manifests/site.pp": site_pp(token)}, f"commit {token}")
    said = checkout.push()
    assert "production: deploy" in said and "queued" in said, said
    deploy = wait_for_deploy(url, "production", head, timeout=900)
    assert deploy["status"] == "ok", deploy["error"]
    servers = {r["target"]: r for r in deploy["result"]["servers"]}
    for short in SERVERS:
        assert servers[fqdn(infra, short)]["value"] == {"production": head}
        assert deployed_commit(infra, short) == head
        assert flushes(infra, short) == before[short] + 1
    assert agent_run(infra, "agent1") in (0, 2)
    assert infra.ssh("agent1", f"cat {MOTD}") == f"deployed by deploy_code: commit {token}\n"


def test_a_pushed_branch_is_deployed_everywhere_and_deleting_it_removes_it_everywhere(
        infrastructure, webhook):
    infra = infrastructure
    _, checkout, _, url = webhook
    branch = f"hook_{uuid.uuid4().hex[:6]}"
    head = checkout.commit({"manifests/site.pp": site_pp(branch)}, f"commit {branch}", branch)
    checkout.push(branch)
    deploy = wait_for_deploy(url, branch, head, timeout=900)
    assert deploy["status"] == "ok", deploy["error"]

    def present() -> list[str]:
        return [s for s in SERVERS
                if infra.ssh(s, f"test -d {ENVIRONMENTS}/{branch} && echo yes || echo no")
                .strip() == "yes"]
    assert present() == list(SERVERS)
    newest = last_job(url)
    said = checkout.delete(branch)
    assert f"{branch}: removal" in said and "queued" in said, said
    removal = wait_for_deploy(url, branch, None, timeout=900, action="remove", after=newest)
    assert removal["status"] == "ok", removal["error"]
    assert present() == []


def test_a_second_install_webhook_changes_nothing_and_noop_neither(infrastructure, webhook):
    pid = infrastructure.ssh("main", f"cat {PATHS.pidfile}").strip()
    for noop in (True, False):
        with infrastructure.run(noop=noop) as run:
            results = install_webhook(run)
        assert [r.status for r in results] == ["unchanged"] * len(results), results.table()
    assert infrastructure.ssh("main", f"cat {PATHS.pidfile}").strip() == pid  # not restarted


def test_the_secret_is_in_no_log_output_or_command_line(infrastructure, webhook):
    secret = infrastructure.ssh("main", f"cat {PATHS.secret}").strip()
    assert len(secret) >= 32
    assert secret not in infrastructure.log.read_text()
    assert secret not in infrastructure.ssh("main", f"cat {shlex.quote(PATHS.log)} "
                                                    f"{shlex.quote(PATHS.output)}")
    assert secret not in infrastructure.ssh("main", "ps -eo args")
