"""The post-receive hook, for real: a bare git repository whose hook was put there by the
``PostReceiveHook`` step (local transport), real ``git push``es into it, and a real webhook
server (waitress on a free port, the deploy stubbed at the plan boundary) receiving what the
hook posts — signed, one event per pushed branch, deletions included."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from puppetops import Inventory, Run
from puppetops.steps.code.control_repo import PostReceiveHook
from puppetops.testing.webhook import RecordingDeploy
from puppetops.webhook import post_receive

from test_webhook import SECRET, Webhook

GIT = ["git", "-c", "user.name=t", "-c", "user.email=t@localhost", "-c", "init.defaultBranch=x"]


def git(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    done = subprocess.run([*GIT, *args], cwd=cwd, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done


def hook_lines(done: subprocess.CompletedProcess) -> list[str]:
    return [line[len("remote: "):].strip() for line in done.stderr.splitlines()
            if line.startswith("remote: puppetops webhook")]


class Repo:
    """A bare repo with the hook (installed by the step) and a clone to push from."""

    def __init__(self, tmp: Path, port: int, secret: str = SECRET):
        self.secret_file, self.config = tmp / "secret", tmp / "config.yaml"
        self.set_secret(secret)
        self.config.write_text(yaml.safe_dump({"listen": f"127.0.0.1:{port}",
                                               "secret_file": str(self.secret_file)}))
        self.bare, self.work = tmp / "control.git", tmp / "work"
        git("init", "-q", "--bare", str(self.bare), cwd=tmp)
        self.install_hook()
        git("init", "-q", str(self.work), cwd=tmp)
        git("remote", "add", "origin", str(self.bare), cwd=self.work)

    def set_secret(self, secret: str) -> None:
        self.secret_file.write_text(secret + "\n")
        os.chmod(self.secret_file, 0o600)

    def install_hook(self):
        command = (f"{sys.executable} -m puppetops.webhook.post_receive "
                   f"--config {self.config}")
        inventory = Inventory.from_dict({"targets": [{"name": "localhost"}]})
        with Run(inventory, lock=False) as run:
            return run.step(PostReceiveHook(str(self.bare), command), "localhost",
                            catch_errors=True)[0]

    def commit(self, branch: str, text: str) -> str:
        git("checkout", "-q", "-B", branch, cwd=self.work)
        (self.work / "site.pp").write_text(text)
        git("add", "-A", cwd=self.work)
        git("commit", "-q", "-m", text, cwd=self.work)
        return git("rev-parse", "HEAD", cwd=self.work).stdout.strip()

    def push(self, *refspecs: str) -> subprocess.CompletedProcess:
        return git("push", "origin", *refspecs, cwd=self.work)

    def head(self, branch: str) -> str:
        done = subprocess.run(["git", "--git-dir", str(self.bare), "rev-parse", "-q", "--verify",
                               f"refs/heads/{branch}"], capture_output=True, text=True)
        return done.stdout.strip()


@pytest.fixture
def hooked(tmp_path: Path):
    server = Webhook(tmp_path, RecordingDeploy())
    try:
        yield server, Repo(tmp_path, server.server.port)
    finally:
        server.stop()


def test_the_step_installs_the_hook_once_and_never_replaces_a_foreign_one(hooked):
    _, repo = hooked
    assert repo.install_hook().status == "unchanged"
    hook = repo.bare / "hooks" / "post-receive"
    assert os.access(hook, os.X_OK)
    hook.write_text("#!/bin/sh\necho someone else's hook\n")
    refused = repo.install_hook()
    assert refused.status == "failed" and "is not puppetops'" in refused.message
    assert "someone else's hook" in hook.read_text()


def test_a_push_of_two_branches_posts_one_signed_event_each_and_deploys_both(hooked):
    server, repo = hooked
    production = repo.commit("production", "one")
    feature = repo.commit("feature_x", "two")
    said = hook_lines(repo.push("production", "feature_x"))
    assert len(said) == 2 and all("queued" in line for line in said), said
    server.client.wait_idle()
    assert sorted((c.environment, c.commit) for c in server.deploy.calls) == \
        [("feature_x", feature), ("production", production)]
    requests = [e for e in server.log() if e["event"] == "request" and e["path"] == "/payload"]
    assert [e["status"] for e in requests] == [202, 202]
    assert SECRET not in server.log_path.read_text()


@pytest.mark.slow
def test_a_deleted_branch_is_posted_as_githubs_deletion(hooked):
    server, repo = hooked
    repo.commit("feature_y", "one")
    repo.push("feature_y")
    server.client.wait_idle()
    said = hook_lines(repo.push("--delete", "feature_y"))
    assert len(said) == 1 and said[0].startswith("puppetops webhook: feature_y:"), said
    request = [e for e in server.log() if e["event"] == "request"][-1]
    assert request["status"] in (200, 202) and request["provider"] == "github", request
    assert repo.head("feature_y") == ""


def test_a_wrong_secret_is_refused_by_the_webhook_and_the_push_still_lands(hooked):
    server, repo = hooked
    repo.set_secret("not the webhook's secret")
    head = repo.commit("production", "forged")
    said = hook_lines(repo.push("production"))
    assert said == ["puppetops webhook: production: refused (401): "
                    "'github: missing or wrong x-hub-signature-256; nothing deployed'"], said
    assert server.deploy.calls == [] and repo.head("production") == head


def test_a_webhook_that_is_down_is_reported_and_the_push_still_lands(hooked):
    server, repo = hooked
    server.stop()
    head = repo.commit("production", "while down")
    said = hook_lines(repo.push("production"))
    assert len(said) == 1 and "not reached" in said[0] and "nothing deployed" in said[0], said
    assert repo.head("production") == head


def test_the_event_is_githubs_push_shape_for_updates_creations_and_deletions():
    zero = "0" * 40
    created = post_receive.push_event("refs/heads/a", zero, "1" * 40, "/srv/control.git", "me")
    assert created["created"] and not created["deleted"] and created["after"] == "1" * 40
    assert created["repository"]["name"] == "control"
    deleted = post_receive.push_event("refs/heads/a", "1" * 40, zero, "/srv/control.git", "me")
    assert deleted["deleted"] and deleted["head_commit"] is None and deleted["after"] == zero
    request = post_receive.signed_request("http://127.0.0.1:1/payload", created, SECRET)
    body = request.data
    assert json.loads(body) == created
    assert request.get_header("X-hub-signature-256").startswith("sha256=")
