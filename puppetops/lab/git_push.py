"""A developer's workflow against a control repo on main, from the controller: clone it, commit,
``git push`` — and, with the webhook installed, wait for the deploy the push started.

git reaches main over SSH with the inventory's own settings for it (user, address, port,
private key, known_hosts with host key checking on), so this works on the lab and on any
inventory whose control repo lives on main.
"""
from __future__ import annotations

import json
import os
import shlex
import subprocess
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, Mapping

from ..errors import PuppetopsError
from ..polling import wait_until
from ..target import Target

GIT = ["git", "-c", "user.name=puppetops", "-c", "user.email=puppetops@localhost"]
FINISHED = ("ok", "failed")


class GitPushError(PuppetopsError):
    """A git command or the wait for the deploy failed; the message says which and why."""


def ssh_command(main: Target) -> str:
    """``GIT_SSH_COMMAND`` that logs in to main as the inventory does, host key checked."""
    config = main.transport_config
    words = ["ssh", "-F", "/dev/null", "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes",
             "-o", "UserKnownHostsFile="
             + os.path.expanduser(config.get("known-hosts-file") or "~/.ssh/known_hosts")]
    if config.get("private-key"):
        words += ["-o", "IdentitiesOnly=yes", "-i", os.path.expanduser(config["private-key"])]
    if main.port or config.get("port"):
        words += ["-p", str(main.port or config.get("port"))]
    return " ".join(shlex.quote(w) for w in words)


def remote_url(main: Target, repo: str) -> str:
    """The repository at path ``repo`` on main as an SSH URL."""
    user = main.user or main.transport_config.get("user") or "root"
    return f"ssh://{user}@{main.host or main.name}{repo}"


class Checkout:
    """A clone of the control repo at ``repo`` on main in ``folder`` (made on first use)."""

    def __init__(self, main: Target, folder: str | os.PathLike, repo: str,
                 branch: str = "production"):
        self.main, self.folder, self.branch = main, Path(folder), branch
        self.env = {**os.environ, "GIT_SSH_COMMAND": ssh_command(main)}
        self.last_stderr = ""
        if not (self.folder / ".git").is_dir():
            self.git("clone", "-q", "-b", branch, remote_url(main, repo), str(self.folder),
                     here=False)

    def git(self, *args: str, here: bool = True) -> str:
        """Run git (in the checkout); its stdout, or GitPushError with its stderr."""
        done = subprocess.run([*GIT, *args], cwd=self.folder if here else None, env=self.env,
                              capture_output=True, text=True, timeout=300)
        if done.returncode:
            raise GitPushError(f"git {args[0]} failed ({done.returncode}): "
                               f"{done.stderr.strip()[-500:]}")
        self.last_stderr = done.stderr
        return done.stdout

    def commit(self, files: Mapping[str, str], message: str, branch: str | None = None) -> str:
        """``files`` (path → content) committed on ``branch`` as main has it now (a new
        branch starts at the current head); the new head."""
        branch = branch or self.branch
        self.git("fetch", "-q", "--prune", "origin")
        upstream = f"refs/remotes/origin/{branch}"
        known = subprocess.run(["git", "rev-parse", "-q", "--verify", upstream], cwd=self.folder,
                               capture_output=True).returncode == 0
        self.git("checkout", "-q", "-B", branch, *([upstream] if known else []))
        for path, text in files.items():
            (self.folder / path).parent.mkdir(parents=True, exist_ok=True)
            (self.folder / path).write_text(text)
        self.git("add", "-A")
        self.git("commit", "-q", "--allow-empty", "-m", message)
        return self.git("rev-parse", "HEAD").strip()

    def push(self, branch: str | None = None) -> str:
        """``git push`` of ``branch``; what main printed (the post-receive hook's lines)."""
        branch = branch or self.branch
        self.git("push", "-q", "origin", f"{branch}:{branch}")
        return _remote_lines(self.last_stderr)

    def delete(self, branch: str) -> str:
        """``git push --delete`` of ``branch``; what main printed."""
        self.git("push", "-q", "origin", "--delete", branch)
        return _remote_lines(self.last_stderr)


def _remote_lines(stderr: str) -> str:
    return "\n".join(line[len("remote: "):] for line in stderr.splitlines()
                     if line.startswith("remote: ")).strip()


def webhook_url(main: Target, port: int = 8088) -> str:
    return f"http://{main.host or main.name}:{port}"


def get(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.loads(response.read())


def wait_for_deploy(base: str, environment: str, commit: str | None, timeout: float = 600.0,
                    poll: float = 0.2, *, action: str = "deploy", after: int = 0
                    ) -> dict[str, Any]:
    """The webhook's job for ``environment`` — a deploy of ``commit``, or with ``action=
    "remove"`` the removal newer than job ``after`` — once it is ok or failed (with its
    per-server result); GitPushError if none finishes within ``timeout`` seconds."""
    def wanted(job: dict[str, Any]) -> bool:
        return (job["environment"] == environment and job["id"] > after
                and job.get("action", "deploy") == action
                and (commit is None or job["commit"] == commit))

    def newest() -> dict[str, Any] | None:
        try:
            return next((job for job in get(f"{base}/deploys")["deploys"] if wanted(job)), None)
        except (urllib.error.URLError, OSError, ValueError):
            return None

    seen = wait_until(newest, lambda job: bool(job) and job["status"] in FINISHED, timeout, poll)
    if seen and seen["status"] in FINISHED:
        return get(f"{base}/deploys/{seen['id']}")
    what = f"{action} of {environment}" + (f" at {commit[:12]}" if commit else "")
    state = f"job {seen['id']} still {seen['status']}" if seen else "none listed"
    raise GitPushError(f"{base}: no {what} finished after {timeout:.0f} s ({state})")


def last_job(base: str) -> int:
    """The id of the webhook's newest job (0 for none)."""
    jobs = get(f"{base}/deploys")["deploys"]
    return max((job["id"] for job in jobs), default=0)
