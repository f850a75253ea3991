"""SSH transport: a Fabric ``Connection`` per target, opened once and reused for every step.

Commands run on a fresh channel of the already-authenticated transport, read with ``select``
rather than Fabric's thread-per-stream runner: a second step on 200 open connections then
costs a couple of milliseconds per host instead of three extra threads per command.
"""
from __future__ import annotations

import errno
import os
import select
import socket
import threading
import time

import paramiko
from fabric import Config, Connection as FabricConnection

from ..errors import (AuthenticationError, CommandTimeout, HostKeyError,
                      TransientTransportError, TransportError)
from ..target import Target
from .base import CommandOutput, Connection

DEFAULT_PORT = 22
DEFAULT_CONNECT_TIMEOUT = 10.0
_TRANSIENT_ERRNOS = {errno.ECONNREFUSED, errno.ECONNRESET, errno.ETIMEDOUT, errno.EHOSTUNREACH,
                     errno.ENETUNREACH, errno.ECONNABORTED, errno.EPIPE}
_TRANSIENT_SSH_MESSAGES = ("banner", "negotiat", "session not active", "unable to connect",
                           "no existing session", "connection reset", "eof")


class SshCredentials:
    """Known-hosts files and private keys, parsed once per run and shared by every connection.

    Parsing a 200-line known_hosts file for each of 200 connections would cost more CPU than
    the handshakes themselves.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._known_hosts: dict[str, paramiko.HostKeys] = {}
        self._keys: dict[str, paramiko.PKey] = {}
        self.fabric_config = Config(ssh_config=paramiko.SSHConfig())

    def known_hosts(self, path: str) -> paramiko.HostKeys:
        with self._lock:
            if path not in self._known_hosts:
                keys = paramiko.HostKeys()
                if os.path.exists(path):
                    keys.load(path)
                self._known_hosts[path] = keys
            return self._known_hosts[path]

    def private_key(self, path: str) -> paramiko.PKey:
        with self._lock:
            if path not in self._keys:
                try:
                    self._keys[path] = paramiko.PKey.from_path(path)
                except (OSError, paramiko.SSHException) as exc:
                    raise AuthenticationError(f"cannot load private key {path}: {exc}") from None
            return self._keys[path]


class _Reject(paramiko.MissingHostKeyPolicy):
    def missing_host_key(self, client, hostname, key):  # noqa: D102 - paramiko hook
        raise HostKeyError(
            f"host key for {hostname} is not in the known_hosts file ({key.get_name()} "
            f"{key.get_fingerprint().hex()}); add it or set host-key-check: false")


class _AcceptInMemory(paramiko.MissingHostKeyPolicy):
    """``host-key-check: false``: accept without recording anything."""

    def missing_host_key(self, client, hostname, key):  # noqa: D102 - paramiko hook
        return


class SshConnection(Connection):
    def __init__(self, target: Target, credentials: SshCredentials,
                 handshake_slots: threading.BoundedSemaphore | None = None):
        super().__init__(target)
        self.credentials = credentials
        self.handshake_slots = handshake_slots
        self.host = target.host or target.name
        self.port = int(target.port or self.config.get("port") or DEFAULT_PORT)
        self.connect_timeout = float(self.config.get("connect-timeout", DEFAULT_CONNECT_TIMEOUT))
        self.handshakes = 0
        self._fabric: FabricConnection | None = None

    @property
    def login_user(self) -> str:
        return self.target.user or self.config.get("user") or "root"

    # -- connection ------------------------------------------------------------------------
    def open(self) -> None:
        """Connect and authenticate, unless already connected."""
        if self._fabric is not None and self._fabric.is_connected:
            return
        conn = FabricConnection(self.host, user=self.login_user, port=self.port,
                                config=self.credentials.fabric_config,
                                connect_kwargs=self._connect_kwargs())
        if self.config.get("host-key-check", True):
            known = self.config.get("known-hosts-file") or os.path.expanduser("~/.ssh/known_hosts")
            # paramiko looks keys up in _system_host_keys first; sharing one parsed copy keeps
            # the per-connection cost down (see SshCredentials).
            conn.client._system_host_keys = self.credentials.known_hosts(known)
            conn.client.set_missing_host_key_policy(_Reject())
        else:
            conn.client.set_missing_host_key_policy(_AcceptInMemory())
        slots = self.handshake_slots
        if slots:
            slots.acquire()
        try:
            conn.open()
        except Exception as exc:  # mapped to our error kinds below
            conn.close()
            raise _map_connect_error(exc, self.host, self.port) from None
        finally:
            if slots:
                slots.release()
        self.handshakes += 1
        self._fabric = conn

    def _connect_kwargs(self) -> dict:
        kwargs = {"timeout": self.connect_timeout, "banner_timeout": self.connect_timeout,
                  "auth_timeout": self.connect_timeout}
        key = self.config.get("private-key")
        if key:
            kwargs.update(pkey=self.credentials.private_key(os.path.expanduser(key)),
                          look_for_keys=False, allow_agent=False)
        return kwargs

    def close(self) -> None:
        if self._fabric is not None:
            self._fabric.close()
            self._fabric = None

    # -- commands --------------------------------------------------------------------------
    def _exec(self, command: str, stdin: bytes | None, timeout: float) -> CommandOutput:
        self.open()
        start = time.monotonic()
        try:
            chan = self._fabric.transport.open_session(timeout=self.connect_timeout)
            chan.exec_command(command)
            if stdin:
                chan.sendall(stdin)
            chan.shutdown_write()
            out, err = _read_until_exit(chan, start + timeout)
            code = chan.recv_exit_status()
            chan.close()
        except CommandTimeout:
            raise CommandTimeout(f"command timed out after {timeout:g}s") from None
        except (OSError, EOFError, paramiko.SSHException) as exc:
            self.close()
            raise TransientTransportError(f"connection to {self.host}:{self.port} lost: {exc}") from None
        return CommandOutput(command, code, out.decode(errors="replace"),
                             err.decode(errors="replace"), time.monotonic() - start)


def _read_until_exit(chan: paramiko.Channel, deadline: float) -> tuple[bytes, bytes]:
    """Drain stdout and stderr until the command exits and both streams are closed."""
    out, err = bytearray(), bytearray()
    while True:
        while chan.recv_ready():
            out += chan.recv(65536)
        while chan.recv_stderr_ready():
            err += chan.recv_stderr(65536)
        if chan.exit_status_ready() and (chan.eof_received or chan.closed) \
                and not chan.recv_ready() and not chan.recv_stderr_ready():
            return bytes(out), bytes(err)
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            chan.close()
            raise CommandTimeout()
        select.select([chan], [], [], min(remaining, 1.0))


def _map_connect_error(exc: Exception, host: str, port: int) -> TransportError:
    where = f"{host}:{port}"
    if isinstance(exc, TransportError):
        return exc
    if isinstance(exc, paramiko.BadHostKeyException):
        return HostKeyError(
            f"host key for {where} has CHANGED (got {exc.key.get_name()} "
            f"{exc.key.get_fingerprint().hex()}, known_hosts has "
            f"{exc.expected_key.get_fingerprint().hex()}): refusing to connect")
    if isinstance(exc, paramiko.AuthenticationException):
        return AuthenticationError(f"authentication to {where} failed: {exc}")
    if isinstance(exc, paramiko.ssh_exception.NoValidConnectionsError):
        return TransientTransportError(f"cannot connect to {where}: connection refused")
    if isinstance(exc, (socket.timeout, TimeoutError)):
        return TransientTransportError(f"cannot connect to {where}: timed out")
    if isinstance(exc, OSError):
        kind = TransientTransportError if exc.errno in _TRANSIENT_ERRNOS or exc.errno is None \
            else TransportError
        return kind(f"cannot connect to {where}: {exc.strerror or exc}")
    if isinstance(exc, (paramiko.SSHException, EOFError)):
        text = str(exc).lower()
        kind = TransientTransportError if any(m in text for m in _TRANSIENT_SSH_MESSAGES) \
            or isinstance(exc, EOFError) else TransportError
        return kind(f"SSH to {where} failed: {exc}")
    return TransportError(f"SSH to {where} failed: {exc!r}")
