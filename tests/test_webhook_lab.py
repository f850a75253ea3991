"""End to end on the stood-up lab: a signed push to a running webhook deploys the commit with
the real deploy_code plan on main and both compilers, and the next agent run applies it."""
from __future__ import annotations

import threading
import uuid

import pytest

from puppetops.testing.webhook import Client
from puppetops.webhook.config import WebhookConfig
from puppetops.webhook.server import WebhookServer

from test_operate_e2e import MOTD, SERVERS, agent_run, deployed_commit, fqdn, push

pytestmark = pytest.mark.lab

SECRET = "lab-webhook-secret"


def test_a_signed_push_deploys_the_commit_everywhere_with_deploy_code(infrastructure, tmp_path):
    infra = infrastructure
    config = WebhookConfig(host="127.0.0.1", port=0, secret=SECRET,
                           inventory=str(infra.lab.inventory),
                           database=str(tmp_path / "db.sqlite3"),
                           log_file=str(tmp_path / "webhook.log"))
    server = WebhookServer(config)  # the real deployer: deploy_code on the lab's inventory
    thread = threading.Thread(target=server.serve, daemon=True)
    thread.start()
    client = Client(server.port)
    try:
        token = f"webhook-{uuid.uuid4().hex[:8]}"
        head = push(infra, token)
        reply = client.push("github", "production", head, SECRET)
        assert reply.status == 202, reply.body
        deploy = client.wait(reply.body["id"], timeout=900)
        assert deploy["status"] == "ok", deploy["error"]
        assert deploy["commit"] == head
        servers = {r["target"]: r for r in deploy["result"]["servers"]}
        for short in SERVERS:
            assert servers[fqdn(infra, short)]["value"] == {"production": head}
            assert deployed_commit(infra, short) == head
        assert agent_run(infra, "agent1") in (0, 2)
        assert infra.ssh("agent1", f"cat {MOTD}") == f"deployed by deploy_code: commit {token}\n"
    finally:
        client.close()
        server.stop()
        thread.join(60)
