"""Code deployment with r10k: the control repo, read-only SSH access to it, r10k.yaml, deploy.

Access model (no ``StrictHostKeyChecking=no`` anywhere): each server gets its own deploy key
(generated on the server, the private key never leaves it); main authorizes it with a
restricted authorized_keys line that can only run ``git-upload-pack`` on the control repo;
the server learns main's host key from the key files we read over our own, verified, SSH
connection to main. r10k then uses plain ``git`` (shellgit) with root's ssh config.

Steps take their per-target values (layout paths, certnames) from the step context, so one
step instance serves a mixed fleet; ``R10kDeploy`` is reusable for any environment.
"""
from __future__ import annotations

import json
import re
import shlex
from typing import Mapping

from ...errors import StepError, UsageError
from ...puppet import names, node
from ...step import Step, StepContext
from ..files import FileEdit
from ..packages import Packages

SSH_DIR = "/root/.ssh"  # r10k runs as root, so its git runs with root's ssh settings
DEPLOY_KEY = f"{SSH_DIR}/puppetops_r10k"
KEY_COMMENT = "puppetops-r10k@"
CACHEDIR = "/var/cache/r10k"
_PATH = re.compile(r"^/[A-Za-z0-9._/-]+\Z")


def repo_path(path: str) -> str:
    """A control-repo path safe in a shell, an authorized_keys command and a git URL."""
    if not _PATH.match(path) or ".." in path:
        raise UsageError(f"invalid control repo path {path!r}: use an absolute path of letters, "
                         "digits, dots, dashes, underscores and slashes")
    return path


# -- the control repo on main --------------------------------------------------------------

SEED = {
    "manifests/site.pp": 'node default {\n'
                         '  notify { "compiled by ${server_facts[\'servername\']}": }\n'
                         '}\n',
    "environment.conf": "modulepath = modules:$basemodulepath\n",
    "Puppetfile": "# Modules for this environment (r10k deploy environment -m)\n",
}


class ControlRepo(Step):
    """A bare git repository with branch ``branch`` holding a minimal environment."""

    name = "control repo"

    def __init__(self, path: str, branch: str = "production"):
        super().__init__()
        self.path, self.branch = repo_path(path), names.environment(branch)

    def check(self, ctx: StepContext) -> str | None:
        if ctx.test(f"git --git-dir={shlex.quote(self.path)} rev-parse -q --verify "
                    f"refs/heads/{self.branch} >/dev/null"):
            return None
        return f"create {self.path} with branch {self.branch}"

    def change(self, ctx: StepContext) -> None:
        repo, branch = shlex.quote(self.path), self.branch
        writes = " && ".join(f'mkdir -p "$(dirname "$w"/{shlex.quote(p)})" && '
                             f'printf %s {shlex.quote(text)} > "$w"/{shlex.quote(p)}'
                             for p, text in SEED.items())
        git = "git -c user.name=puppetops -c user.email=puppetops@localhost"
        ctx.run(f"set -e; [ -d {repo} ] || git init -q --bare -b {branch} {repo}; "
                f"w=$(mktemp -d); trap 'rm -rf \"$w\"' EXIT; git init -q -b {branch} \"$w\"; "
                f"{writes}; {git} -C \"$w\" add -A; {git} -C \"$w\" commit -q -m "
                f"'Initial {branch} environment'; git -C \"$w\" push -q {repo} {branch}")


# -- SSH access to it ----------------------------------------------------------------------

class DeployKey(Step):
    """The server has its own ed25519 deploy key (private key generated on it, mode 0600)."""

    name = "deploy key"

    def check(self, ctx: StepContext) -> str | None:
        if ctx.test(f"[ -f {DEPLOY_KEY} ] && [ -f {DEPLOY_KEY}.pub ]"):
            return None
        return f"generate {DEPLOY_KEY}"

    def change(self, ctx: StepContext) -> None:
        comment = shlex.quote(KEY_COMMENT + node.certname(ctx.target))
        ctx.run(f"install -d -m 700 {SSH_DIR} && if [ -f {DEPLOY_KEY} ]; then "
                f"ssh-keygen -y -f {DEPLOY_KEY} > {DEPLOY_KEY}.pub; else "
                f"ssh-keygen -q -t ed25519 -N '' -C {comment} -f {DEPLOY_KEY}; fi")


def public_key(ctx: StepContext) -> str | None:
    """The server's deploy public key as ``TYPE BASE64`` (its comment dropped); None before
    it exists (in noop)."""
    text = ctx.read(f"{DEPLOY_KEY}.pub")
    if text is None:
        return None
    fields = text.split()
    if len(fields) < 2 or not re.match(r"^(ssh|ecdsa)-[a-z0-9-]+$", fields[0]):
        raise StepError(f"{DEPLOY_KEY}.pub is not an OpenSSH public key")
    return f"{fields[0]} {fields[1]}"


def host_keys(ctx: StepContext) -> list[str]:
    """This host's SSH host public keys (``TYPE BASE64``), read over our verified connection."""
    out = ctx.run("cat /etc/ssh/ssh_host_*_key.pub")
    keys = [" ".join(line.split()[:2]) for line in out.stdout.splitlines() if line.strip()]
    if not keys:
        raise StepError("no SSH host public keys in /etc/ssh")
    return keys


class AuthorizedDeployKeys(FileEdit):
    """Main's root authorized_keys lets each server's deploy key fetch the control repo, and
    nothing else: ``restrict`` (no pty, forwarding...) plus a forced git-upload-pack."""

    name = "authorized deploy keys"
    mode = 0o600

    def __init__(self, keys: Mapping[str, str], repo: str):
        super().__init__()
        self.keys, self.repo = dict(keys), repo_path(repo)

    def path(self, ctx: StepContext) -> str:
        return f"{SSH_DIR}/authorized_keys"

    def line(self, certname: str) -> str:
        command = f"git-upload-pack {self.repo}"
        return (f'restrict,command="{command}" {self.keys[certname]} '
                f"{KEY_COMMENT}{names.certname(certname)}")

    def edit(self, ctx: StepContext, current: str | None) -> str:
        """Each server's line replaced where it is (or appended); other lines untouched."""
        lines, placed = [], set()
        for line in (current or "").splitlines():
            owner = next((c for c in self.keys if line.endswith(f" {KEY_COMMENT}{c}")), None)
            if owner is None:
                lines.append(line)
            elif owner not in placed:
                lines.append(self.line(owner))
                placed.add(owner)
        lines += [self.line(c) for c in sorted(self.keys) if c not in placed]
        return "\n".join(lines) + "\n"


class KnownHost(FileEdit):
    """Root's known_hosts holds exactly ``keys`` for ``host`` (stale keys for it removed)."""

    name = "known host"
    mode = 0o644

    def __init__(self, host: str, keys: list[str]):
        super().__init__()
        self.host, self.keys = names.certname(host), keys

    def path(self, ctx: StepContext) -> str:
        return f"{SSH_DIR}/known_hosts"

    def edit(self, ctx: StepContext, current: str | None) -> str:
        kept = [line for line in (current or "").splitlines()
                if self.host not in (line.split(" ", 1)[0].split(","))]
        return "\n".join(kept + [f"{self.host} {key}" for key in self.keys]) + "\n"


# r10k fetches the control repo twice per deploy (once to list the branches, once more before
# purging environments whose branch is gone: its default purge level "deployment"), each a new
# SSH connection to main. Multiplexing makes the second fetch ride on the first's connection:
# one handshake per deploy instead of two (~0.1 s and ~0.1 CPU-s per server, half of it on
# main's sshd). The master lingers MUX_PERSIST seconds after its last use, so deploys minutes
# apart still start with a fresh connection (and a fresh check of main's host key).
MUX_PERSIST = 5
MUX_PATH = "/run/puppetops-r10k-%C"


class SshIdentity(FileEdit):
    """Root's ssh config uses the deploy key for ``host``, with host key checking on, and
    shares one connection between the fetches of one r10k run (``MUX_PERSIST``). The block
    goes first: ssh takes the first value it finds for each option."""

    name = "ssh identity"
    mode = 0o600

    def __init__(self, host: str):
        super().__init__()
        self.host = names.certname(host)

    def path(self, ctx: StepContext) -> str:
        return f"{SSH_DIR}/config"

    def edit(self, ctx: StepContext, current: str | None) -> str:
        begin, end = "# BEGIN puppetops r10k", "# END puppetops r10k"
        lines = (current or "").splitlines()
        if begin in lines and end in lines:
            lines = lines[:lines.index(begin)] + lines[lines.index(end) + 1:]
        block = [begin, f"Host {self.host}", f"    IdentityFile {DEPLOY_KEY}",
                 "    IdentitiesOnly yes", "    StrictHostKeyChecking yes",
                 "    BatchMode yes", "    ControlMaster auto", f"    ControlPath {MUX_PATH}",
                 f"    ControlPersist {MUX_PERSIST}", end]
        return "\n".join(block + lines) + "\n"


# -- r10k ----------------------------------------------------------------------------------

class R10kInstalled(Step):
    """r10k is installed: the OS package (Debian), or the gem in the AIO Ruby."""

    name = "r10k installed"
    timeout = 900.0

    def check(self, ctx: StepContext) -> str | None:
        layout = node.layout(ctx.target)
        return None if ctx.test(f"[ -x {shlex.quote(layout.r10k)} ]") else "install r10k"

    def change(self, ctx: StepContext) -> None:
        layout = node.layout(ctx.target)
        if layout.r10k_gem:
            ctx.run(f"{shlex.quote(layout.r10k_gem)} install --no-document r10k")
        else:
            Packages("r10k").change(ctx)


def r10k_yaml(remote: str, basedir: str, prefix: bool | str = False) -> str:
    """r10k.yaml with one source, ``names.R10K_SOURCE``; ``prefix`` as r10k reads it (true:
    the source's name; a string: that; False: none)."""
    if prefix is not True and prefix:
        names.environment(prefix)
    return "\n".join([
        "# managed by puppetops",
        f"cachedir: {json.dumps(CACHEDIR)}",
        "git:",
        "  provider: shellgit",
        "sources:",
        f"  {names.R10K_SOURCE}:",
        f"    remote: {json.dumps(remote)}",
        f"    basedir: {json.dumps(basedir)}",
        *([f"    prefix: {json.dumps(prefix)}"] if prefix else []),
    ]) + "\n"


class R10kConfig(FileEdit):
    """r10k.yaml (the layout's path, one r10k actually reads — lab P8) deploys the control
    repo into the layout's environmentpath, environments named with ``prefix`` (main's var
    ``r10k_prefix``: the same on every server)."""

    name = "r10k.yaml"

    def __init__(self, remote: str, prefix: bool | str = False):
        super().__init__()
        self.remote, self.prefix = remote, prefix

    def path(self, ctx: StepContext) -> str:
        return node.layout(ctx.target).r10k_config

    def edit(self, ctx: StepContext, current: str | None) -> str:
        return r10k_yaml(self.remote, node.layout(ctx.target).environmentpath, self.prefix)


class R10kDeploy(Step):
    """Branch ``branch`` is deployed from the control repo's current commit as its
    environment (``PREFIX_branch`` under the source prefix ``prefix``), with its Puppetfile
    modules, and r10k recorded success.

    Unchanged when ``.r10k-deploy.json`` says deploy_success and its signature is the
    branch's commit on the remote. Runs are serialized per host with flock, so two r10k
    processes never share a basedir.
    """

    timeout = 900.0

    def __init__(self, branch: str, remote: str, prefix: str = ""):
        super().__init__()
        self.environment, self.remote = names.prefixed(branch, prefix), remote
        self.branch = names.environment(branch)
        self.name = f"r10k deploy {self.environment}"

    def _record(self, ctx: StepContext) -> dict:
        path = f"{node.layout(ctx.target).environmentpath}/{self.environment}/.r10k-deploy.json"
        text = ctx.read(path)
        try:
            return json.loads(text) if text else {}
        except ValueError:
            return {}

    def _head(self, ctx: StepContext) -> str:
        out = ctx.run(f"git ls-remote {shlex.quote(self.remote)} "
                      f"refs/heads/{self.branch}", timeout=60)
        if not out.stdout.strip():
            raise StepError(f"the control repo {self.remote} has no branch {self.branch}")
        return out.stdout.split()[0]

    def check(self, ctx: StepContext) -> str | None:
        record = self._record(ctx)
        if not record.get("deploy_success"):
            return f"deploy environment {self.environment}"
        head = self._head(ctx)
        if record.get("signature") != head:
            return (f"deploy environment {self.environment} "
                    f"({str(record.get('signature'))[:10]} → {head[:10]})")
        return None

    def change(self, ctx: StepContext) -> None:
        layout = node.layout(ctx.target)
        ctx.run(f"flock /run/puppetops-r10k.lock {shlex.quote(layout.r10k)} deploy "
                f"environment {self.environment} -m")
