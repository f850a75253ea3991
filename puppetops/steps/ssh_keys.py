"""SSH access between hosts: a key pair generated on a host (its private key never leaves
it), its public key authorized on others, and the host keys it may trust, pinned.

For a service on one host that logs in to others (the webhook on main deploys to every
compiler): nothing is copied from the controller but public keys — host keys the
controller has already verified, never learned by ``ssh-keyscan`` from the network.
"""
from __future__ import annotations

import re
import shlex
from typing import Iterable

from ..errors import StepError, UsageError
from ..step import Step, StepContext
from ..target import Target
from ..transport.credentials import known_hosts_name
from ..transport.ssh import SshConnection, SshCredentials
from .files import FileEdit

_COMMENT = re.compile(r"^[A-Za-z0-9@._-]{1,200}\Z")
_PUBLIC = re.compile(r"^(ssh-[a-z0-9-]+|ecdsa-sha2-[a-z0-9-]+|sk-[a-z0-9@.-]+) [A-Za-z0-9+/=]+\Z")


def comment(text: str) -> str:
    """A key comment safe in a shell and in authorized_keys: it also marks our line there."""
    if not _COMMENT.match(text):
        raise UsageError(f"invalid SSH key comment {text!r}: letters, digits, @ . _ -")
    return text


class SshKeyPair(Step):
    """An ed25519 key pair at ``path`` (private key mode 0600, made on the host)."""

    name = "ssh key pair"

    def __init__(self, path: str, key_comment: str):
        super().__init__()
        self.path, self.comment = path, comment(key_comment)

    def check(self, ctx: StepContext) -> str | None:
        p = shlex.quote(self.path)
        if ctx.test(f"[ -f {p} ] && [ -f {p}.pub ] && [ \"$(stat -c %a {p})\" = 600 ]"):
            return None
        return f"generate {self.path}"

    def change(self, ctx: StepContext) -> None:
        p = shlex.quote(self.path)
        ctx.run(f"install -d -m 700 \"$(dirname {p})\" && if [ -f {p} ]; then chmod 600 {p} && "
                f"ssh-keygen -y -f {p} > {p}.pub; else ssh-keygen -q -t ed25519 -N '' "
                f"-C {shlex.quote(self.comment)} -f {p}; fi")


def read_public_key(path: str):
    """A ``Call`` function: the public key at ``path`` as ``TYPE BASE64``; None before it
    exists (noop)."""
    def read(ctx: StepContext) -> str | None:
        text = ctx.read(f"{path}.pub") if not path.endswith(".pub") else ctx.read(path)
        if text is None:
            return None
        key = " ".join(text.split()[:2])
        if not _PUBLIC.match(key):
            raise StepError(f"{path}.pub is not an OpenSSH public key")
        return key
    return read


class AuthorizedKey(FileEdit):
    """The login user's ``~/.ssh/authorized_keys`` has ``key`` on a line ending in
    ``comment`` (that line replaced if its key changed); every other line untouched."""

    name = "authorized key"
    mode = 0o600

    def __init__(self, key: str, key_comment: str):
        super().__init__()
        if not _PUBLIC.match(key):
            raise UsageError(f"not an OpenSSH public key: {key[:40]!r}")
        self.key, self.comment = key, comment(key_comment)

    def path(self, ctx: StepContext) -> str:
        home = ctx.run('printf %s "$HOME"').stdout.strip() or "/root"
        return f"{home}/.ssh/authorized_keys"

    def edit(self, ctx: StepContext, current: str | None) -> str:
        ours, lines, placed = f"{self.key} {self.comment}", [], False
        for line in (current or "").splitlines():
            if not line.endswith(f" {self.comment}"):
                lines.append(line)
            elif not placed:  # where it was, so a re-run finds the file as it left it
                lines.append(ours)
                placed = True
        return "\n".join(lines if placed else lines + [ours]) + "\n"

    def change(self, ctx: StepContext) -> None:
        ctx.run('install -d -m 700 "$HOME/.ssh"')
        super().change(ctx)


def pinned_known_hosts(targets: Iterable[Target]) -> str:
    """known_hosts text with each target's host keys from the controller's own known_hosts
    file (the keys every run of this controller checks it against), under the name and port
    an inventory with the same address reaches it by. ``UsageError`` for a target the
    controller has no verified key for. The host, port, file and check are the ones the SSH
    transport connects with (a connection that is never opened reads them)."""
    credentials, lines = SshCredentials(), []
    for target in targets:
        ssh = SshConnection(target, credentials) if target.transport == "ssh" else None
        if ssh is None or not ssh.host_key_check:
            raise UsageError(f"{target.name}: the controller does not check its SSH host key "
                             "(host-key-check off, or not ssh), so there is none to pin")
        name = known_hosts_name(ssh.host, ssh.port)
        found = credentials.known_hosts(ssh.known_hosts_file, ssh.host, ssh.port).lookup(name) or {}
        if not found:
            raise UsageError(f"{target.name}: no host key for {name} in {ssh.known_hosts_file}")
        lines += [f"{name} {kind} {key.get_base64()}" for kind, key in found.items()]
    return "\n".join(dict.fromkeys(lines)) + "\n"
