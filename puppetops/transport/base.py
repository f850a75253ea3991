"""The transport interface every connection implements, and what both transports share.

A transport only knows how to run a shell command (with optional stdin, timeout and
privilege escalation) and how to put a file. Everything else — steps, retries, output — is
built on those two calls, so a new transport is small.
"""
from __future__ import annotations

import shlex
import threading
from abc import ABC, abstractmethod
from dataclasses import dataclass

from .. import secrets
from ..errors import ConfigError, TransportError
from ..inventory.schema import setting
from ..target import Target



@dataclass
class CommandOutput:
    """What a remote command produced. Secrets are already masked in ``stdout``/``stderr``."""

    command: str
    exit_code: int
    stdout: str
    stderr: str
    duration: float

    @property
    def ok(self) -> bool:
        return self.exit_code == 0


class Session(ABC):
    """A command left running with its stdin open (``Connection.start``).

    It runs until ``end`` closes its stdin, or until this process dies: then the pipe (local)
    or the SSH connection (remote) goes away with it and the command reads EOF. That lifetime
    is what the infrastructure lock (``puppetops.remote_lock``) is made of.
    """

    @abstractmethod
    def first_line(self, timeout: float) -> str:
        """The command's first line of stdout (no newline), or '' if it ended without one.
        ``CommandTimeout`` if none came in time."""

    @abstractmethod
    def end(self, timeout: float) -> CommandOutput:
        """Close its stdin, wait for it to exit; all it wrote (the first line included)."""

    @abstractmethod
    def alive(self) -> bool:
        """Whether the command still runs (remote: and its connection is still up)."""


class Connection(ABC):
    """One target's connection. Opened lazily on first use and reused for every later call."""

    def __init__(self, target: Target):
        self.target = target
        self.config = target.transport_config
        self.command_timeout = float(setting(self.config, target.transport, "command-timeout"))
        self.run_as = self.config.get("run-as")
        self._sudo_password: str | None = None
        self._sudo_password_loaded = False
        self._passwordless: dict[str, bool] = {}
        self._lock = threading.Lock()

    # -- what a transport implements -------------------------------------------------------
    @abstractmethod
    def _exec(self, command: str, stdin: bytes | None, timeout: float) -> CommandOutput:
        """Run ``command`` through a POSIX shell on the target, as the login user.

        SSH: the login user's shell, as sshd runs it (``$SHELL -c``), in the connection's
        persistent shell when there is no stdin data (see ``persistent_shell.PersistentShell``); local:
        ``/bin/sh -c``. The command's stdin is ``stdin``, or empty (EOF at once) when None.
        """

    @abstractmethod
    def close(self) -> None:
        """Release the connection; safe to call twice."""

    @property
    def login_user(self) -> str | None:
        return self.target.user

    def check(self) -> None:
        """Raise ``ConfigError`` for a setting of this target that cannot work, before anything
        runs (``ConnectionPool.check``). A configured sudo password must be in its variable
        even if no command of this run turns out to need it: the run cannot know in advance."""
        self._password()

    # -- shared behaviour ------------------------------------------------------------------
    def run(self, command: str, *, stdin: bytes | str | None = None, timeout: float | None = None,
            run_as: str | None = None) -> CommandOutput:
        """Run a shell command; ``run_as`` (or the target's ``run-as``) escalates through sudo."""
        data = stdin.encode() if isinstance(stdin, str) else stdin
        user = run_as or self.run_as
        limit = timeout if timeout is not None else self.command_timeout
        if user and user != self.login_user:
            command, data = self._sudo_wrap(command, data, user, limit)
        output = self._exec(command, data, limit)
        output.stdout, output.stderr = secrets.mask(output.stdout), secrets.mask(output.stderr)
        return output

    def start(self, command: str, *, run_as: str | None = None) -> Session:
        """Start a shell command and leave it running (see ``Session``), through sudo like
        ``run``. The caller ends it; on SSH it should own the connection (``ConnectionPool.
        dedicated``), so that no retry or reconnect of the run's shared one cuts it short."""
        user = run_as or self.run_as
        data = None
        if user and user != self.login_user:
            command, data = self._sudo_wrap(command, None, user, self.command_timeout)
        return self._start(command, data)

    def _start(self, command: str, stdin: bytes | None) -> Session:
        """What a transport implements to support ``start``."""
        raise TransportError(f"{self.target.name}: the {self.target.transport} transport cannot "
                             "keep a command running")

    def put(self, content: bytes | str, remote_path: str, *, mode: int | None = None,
            run_as: str | None = None, timeout: float | None = None) -> CommandOutput:
        """Write ``content`` to ``remote_path`` atomically (temp file in the same folder, rename).

        Uses the command channel rather than SFTP so it works wherever a shell does, including
        through sudo.
        """
        data = content.encode() if isinstance(content, str) else content
        path = shlex.quote(remote_path)
        tmp = shlex.quote(remote_path + ".puppetops-tmp")
        chmod = f"chmod {mode:o} {tmp} && " if mode is not None else ""
        script = f"umask 077 && cat > {tmp} && {chmod}mv -f {tmp} {path}"
        return self.run(script, stdin=data, timeout=timeout, run_as=run_as)

    def _sudo_wrap(self, command: str, data: bytes | None, user: str,
                   timeout: float) -> tuple[str, bytes | None]:
        """Wrap a command in sudo, feeding the password on stdin only when sudo will read it.

        ``-k`` makes sudo ask for the password every time, so the password line is never left
        for the command itself to read (as it would be with cached credentials). Accounts with
        NOPASSWD are detected once per user and get no password at all.
        """
        inner = f"/bin/sh -c {shlex.quote(command)}"
        u = shlex.quote(user)
        if self._is_passwordless(user, timeout):
            return f"sudo -n -H -u {u} -- {inner}", data
        password = self._password()
        if password is None:  # the host was reached; its settings cannot work
            raise ConfigError(
                f"run-as {user}: sudo needs a password and no sudo-password is configured "
                "(set config.<transport>.sudo-password: {_plugin: env_var, var: NAME})")
        return f"sudo -k -S -p '' -H -u {u} -- {inner}", password.encode() + b"\n" + (data or b"")

    def _is_passwordless(self, user: str, timeout: float) -> bool:
        with self._lock:
            if user not in self._passwordless:
                probe = self._exec(f"sudo -k -n -u {shlex.quote(user)} true", None, timeout)
                self._passwordless[user] = probe.exit_code == 0
            return self._passwordless[user]

    def _password(self) -> str | None:
        if not self._sudo_password_loaded:
            try:
                self._sudo_password = secrets.resolve(self.config.get("sudo-password"),
                                                      what="sudo-password")
            except (KeyError, ValueError) as exc:
                raise ConfigError(str(exc.args[0])) from None
            self._sudo_password_loaded = True
        return self._sudo_password
