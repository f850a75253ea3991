"""SSH transport: a paramiko client per target, opened once and reused for every step.

Each connection is a paramiko ``SSHClient`` set up for strict host-key checking against the
run's one parsed known_hosts copy (``credentials.py``), on our own TCP socket (TCP_NODELAY).
Fabric's ``Connection`` is not used to connect or to run commands, because made in many
threads at once from one shared Invoke config it left that config briefly empty (healthy hosts
"unreachable" in 2 of 10 runs on 200 hosts) and its runner reads each stream in a thread of its
own; one is made on the open client, on demand, for what puppetops does not wrap
(``SshConnection.fabric``).

Commands without stdin data run in the connection's persistent shell (``persistent_shell.py``);
commands with stdin data (``put``, sudo with a password), and every command when the inventory
option ``persistent-shell`` is off, run on a fresh exec channel of the already-authenticated
transport. Either way output is read in the calling thread (``channel.py``).
"""
from __future__ import annotations

import errno
import logging
import os
import socket
import threading
import time
from contextlib import contextmanager
from typing import Callable

import paramiko
from fabric import Config, Connection as FabricConnection

from ..errors import AuthenticationError, CommandTimeout, HostKeyError, TransientTransportError, TransportError
from ..inventory.schema import setting, target_setting
from ..target import Target
from .. import secrets as masking
from .base import CommandOutput, Connection, Session
from .channel import read_until_exit
from .credentials import AcceptUnknownHost, RejectUnknownHost, SshCredentials
from .persistent_shell import PersistentShell, ShellNotStarted

# paramiko's transport thread wakes every 0.1 s to look for a close: CPU and GIL wake-ups for
# nothing on hundreds of idle connections (docs/benchmarks.md, "What changed in the
# transport", 4). After the handshake 1 s is enough: close() wakes the thread itself, and
# commands have their own timeouts.
IDLE_POLL_SECONDS = 1.0

# paramiko logs a failed handshake (a port that does not speak SSH, a reset) as an error with
# its traceback; with no logging configured Python prints that on stderr. Every such fault
# already reaches the operator as the target's result, so paramiko's own copy is dropped unless
# the caller configures logging (a handler on "paramiko" or the root logger still gets it).
logging.getLogger("paramiko").addHandler(logging.NullHandler())
SESSION_KEEPALIVE_SECONDS = 30
_TRANSIENT_ERRNOS = {errno.ECONNREFUSED, errno.ECONNRESET, errno.ETIMEDOUT, errno.EHOSTUNREACH,
                     errno.ENETUNREACH, errno.ECONNABORTED, errno.EPIPE}
_TRANSIENT_SSH_MESSAGES = ("banner", "negotiat", "session not active", "unable to connect",
                           "no existing session", "connection reset", "eof")
# What connecting may raise because of the network, the peer or the credentials; anything
# else is a bug and is not dressed up as a transport fault (see _map_connect_error).
_CONNECT_FAULTS = (TransportError, OSError, EOFError, paramiko.SSHException)


class SshConnection(Connection):
    def __init__(self, target: Target, credentials: SshCredentials,
                 handshake_slots: threading.BoundedSemaphore | None = None):
        super().__init__(target)
        self.credentials = credentials
        self.handshake_slots = handshake_slots
        self.host = target.host or target.name
        self.port = int(target_setting(target, "port"))
        self.connect_timeout = float(setting(self.config, "ssh", "connect-timeout"))
        self.handshakes = 0
        self.persistent_shell = bool(setting(self.config, "ssh", "persistent-shell"))
        self.host_key_check = bool(setting(self.config, "ssh", "host-key-check"))
        self.known_hosts_file = os.path.expanduser(setting(self.config, "ssh", "known-hosts-file"))
        key = self.config.get("private-key")
        self.private_key_file = os.path.expanduser(key) if key else None
        self.shells_started = 0  # persistent shells opened so far (1 per connection = reuse)
        self._shell: PersistentShell | None = None
        self._shell_lock = threading.Lock()
        self._client: paramiko.SSHClient | None = None
        self._fabric: FabricConnection | None = None

    @property
    def login_user(self) -> str:
        return target_setting(self.target, "user")

    def check(self) -> None:
        """Also load the private key and the known_hosts file now (each once per run; the
        connections then use the parsed copies), so a bad one stops the run before it starts."""
        super().check()
        if self.private_key_file:
            self.credentials.private_key(self.private_key_file)
        if self.host_key_check:
            self.credentials.known_hosts(self.known_hosts_file, self.host, self.port)

    # -- connection ------------------------------------------------------------------------
    def open(self) -> None:
        """Connect and authenticate, unless already connected.

        Network, protocol and credential faults become our ``TransportError`` kinds; any other
        exception is a bug and propagates as itself, so it is reported as an internal error
        rather than as an unreachable host (and is not retried).
        """
        if self._client is not None and self._transport.active:
            return
        client = paramiko.SSHClient()
        if self.host_key_check:
            # paramiko looks keys up in _system_host_keys first: give it this host's entries of
            # the run's one parsed copy (see credentials.py).
            client._system_host_keys = self.credentials.known_hosts(self.known_hosts_file,
                                                                    self.host, self.port)
            client.set_missing_host_key_policy(RejectUnknownHost())
        else:
            client.set_missing_host_key_policy(AcceptUnknownHost())
        slots = self.handshake_slots
        if slots:
            slots.acquire()
        try:
            sock = _open_socket(self.host, self.port, self.connect_timeout)
            client.connect(self.host, port=self.port, username=self.login_user, sock=sock,
                           **self._connect_kwargs())
        except BaseException as exc:
            client.close()
            if isinstance(exc, _CONNECT_FAULTS):
                raise _map_connect_error(exc, self.host, self.port) from None
            raise
        finally:
            if slots:
                slots.release()
        client.get_transport().sock.settimeout(IDLE_POLL_SECONDS)
        self.handshakes += 1
        self._client = client

    @property
    def fabric(self) -> FabricConnection | None:
        """A Fabric ``Connection`` on this target's open client, for what puppetops does not
        wrap; ``None`` while not connected. Made on first use, with a Fabric config of its own
        and an empty ssh_config (the inventory is the only source of connection settings)."""
        with self._lock:
            if self._client is None:
                return None
            if self._fabric is None:
                fabric = FabricConnection(self.host, user=self.login_user, port=self.port,
                                          config=Config(ssh_config=paramiko.SSHConfig()))
                fabric.client, fabric.transport = self._client, self._transport
                self._fabric = fabric
            return self._fabric

    @property
    def _transport(self) -> paramiko.Transport:
        return self._client.get_transport()

    def _connect_kwargs(self) -> dict:
        kwargs = {"timeout": self.connect_timeout, "banner_timeout": self.connect_timeout,
                  "auth_timeout": self.connect_timeout}
        if self.private_key_file:
            kwargs.update(pkey=self.credentials.private_key(self.private_key_file),
                          look_for_keys=False, allow_agent=False)
        return kwargs

    def close(self) -> None:
        """Close the connection; its transport thread ends now, not at its next idle poll.

        paramiko only closes the socket, which does not wake a thread blocked reading it; the
        shutdown does (EOF), so no thread lingers after the run for the kernel to tear down at
        exit (docs/benchmarks.md, "What changed in the transport", 5).
        """
        if self._client is not None:
            try:
                self._transport.sock.shutdown(socket.SHUT_RDWR)
            except OSError:  # already closed or reset by the peer
                pass
            self._client.close()
            self._client = self._fabric = None
            self._shell = None  # its channel went with the transport

    # -- commands --------------------------------------------------------------------------
    def _exec(self, command: str, stdin: bytes | None, timeout: float) -> CommandOutput:
        """Run ``command`` as an exec channel would: through the login user's shell.

        Without stdin data it goes to the connection's persistent shell, unless that is turned
        off or busy with another thread's command (one connection may serve several threads:
        the second one gets an exec channel rather than waiting). A NUL byte, which would split
        a frame, also takes an exec channel (where the shell's ``-c`` ends the command there).
        """
        self.open()
        if (not stdin and self.persistent_shell and "\0" not in command
                and self._shell_lock.acquire(blocking=False)):
            try:
                return self._exec_in_shell(command, timeout)
            finally:
                self._shell_lock.release()
        return self._exec_channel(command, stdin, timeout)

    def _exec_channel(self, command: str, stdin: bytes | None, timeout: float) -> CommandOutput:
        """One SSH session per command: sshd runs ``$SHELL -c command``."""
        start = time.monotonic()
        with self._failures(timeout):
            chan = self._transport.open_session(timeout=self.connect_timeout)
            chan.exec_command(command)
            if stdin:
                chan.sendall(stdin)
            chan.shutdown_write()
            out, err = read_until_exit(chan, start + timeout)
            code = chan.recv_exit_status()
            chan.close()
        return _output(command, out, err, code, start)

    def _start(self, command: str, stdin: bytes | None) -> Session:
        """The session may sit silent for a whole run: keepalives keep a NAT or firewall from
        dropping its idle connection (and with it, say, the infrastructure lock)."""
        self.open()
        self._transport.set_keepalive(SESSION_KEEPALIVE_SECONDS)
        with self._failures(self.connect_timeout):
            chan = self._transport.open_session(timeout=self.connect_timeout)
            chan.exec_command(command)
            if stdin:
                chan.sendall(stdin)
        return _ChannelSession(chan, command)

    def _exec_in_shell(self, command: str, timeout: float) -> CommandOutput:
        """Run ``command`` in the persistent shell, starting one when there is none (or it died).

        A shell that ended before the command started (sshd or someone killed it while idle)
        is replaced once; a brand-new shell that cannot run a command at all (a login shell
        that is not a POSIX shell, say) turns the persistent shell off for this connection and
        the command runs on an exec channel, as it would have without the option.
        """
        start = time.monotonic()
        deadline = start + timeout
        # on a timeout the command may still run in that shell: its output must not leak
        with self._failures(timeout, on_timeout=self._discard_shell):
            while True:
                shell = self._shell
                if shell is None or not shell.usable(self._transport):
                    shell = self._shell = PersistentShell(self._transport, self.connect_timeout)
                    self.shells_started += 1
                try:
                    out, err, code = shell.run(command, deadline)
                    break
                except ShellNotStarted:
                    self._shell = None
                    shell.close()
                    if shell.commands == 0:
                        self.persistent_shell = False
                        return self._exec_channel(command, None, max(deadline - time.monotonic(), 0.001))
        return _output(command, out, err, code, start)

    @contextmanager
    def _failures(self, timeout: float, on_timeout: Callable[[], None] | None = None):
        """What a command's faults mean to callers: a timeout stays a ``CommandTimeout``
        (after ``on_timeout``); a broken connection is closed and becomes a
        ``TransientTransportError``, which the executor retries."""
        try:
            yield
        except CommandTimeout:
            if on_timeout is not None:
                on_timeout()
            raise CommandTimeout(f"command timed out after {timeout:g}s") from None
        except (OSError, EOFError, paramiko.SSHException) as exc:
            self.close()
            raise TransientTransportError(f"connection to {self.host}:{self.port} lost: {exc}") from None

    def _discard_shell(self) -> None:
        shell, self._shell = self._shell, None
        if shell is not None:
            shell.close()


class _ChannelSession(Session):
    """A command kept running on its own SSH channel; sshd closes its stdin when the channel
    or the whole connection goes (our ``end``, or this process dying)."""

    def __init__(self, chan: paramiko.Channel, command: str):
        self.chan, self.command, self.started = chan, command, time.monotonic()
        self.out = bytearray()

    def first_line(self, timeout: float) -> str:
        self.chan.settimeout(timeout)
        try:
            while b"\n" not in self.out:
                data = self.chan.recv(4096)
                if not data:
                    return ""
                self.out += data
        except socket.timeout:
            raise CommandTimeout(f"no answer within {timeout:g}s") from None
        return bytes(self.out).split(b"\n", 1)[0].decode(errors="replace")

    def alive(self) -> bool:
        transport = self.chan.get_transport()
        return (not self.chan.closed and not self.chan.exit_status_ready()
                and transport is not None and transport.is_active())

    def end(self, timeout: float) -> CommandOutput:
        start = time.monotonic()
        try:
            if not self.chan.closed:
                self.chan.shutdown_write()
            out, err = read_until_exit(self.chan, start + timeout)
            code = self.chan.recv_exit_status()
        except (OSError, EOFError, paramiko.SSHException) as exc:
            raise TransientTransportError(f"connection lost: {exc}") from None
        finally:
            self.chan.close()
        output = _output(self.command, bytes(self.out) + out, err, code, self.started)
        output.stdout, output.stderr = masking.mask(output.stdout), masking.mask(output.stderr)
        return output


def _output(command: str, out: bytes, err: bytes, code: int, start: float) -> CommandOutput:
    return CommandOutput(command, code, out.decode(errors="replace"), err.decode(errors="replace"),
                         time.monotonic() - start)


def _open_socket(host: str, port: int, timeout: float) -> socket.socket:
    """The TCP connection for paramiko, with Nagle's algorithm off.

    paramiko leaves Nagle on, so a small SSH message written while an earlier one is still
    unacknowledged waits for the peer's delayed ACK (40 ms on Linux): in every handshake, and
    in every command after the first on a busy connection (docs/benchmarks.md, "What changed in the transport", 1).
    """
    sock = socket.create_connection((host, port), timeout=timeout)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def _map_connect_error(exc: BaseException, host: str, port: int) -> TransportError:
    """The ``TransportError`` kind for one of ``_CONNECT_FAULTS``. Fingerprints are shown as
    ``ssh-keygen -l`` prints them, to compare with the host's own."""
    where = f"{host}:{port}"
    if isinstance(exc, TransportError):
        return exc
    if isinstance(exc, paramiko.BadHostKeyException):
        return HostKeyError(
            f"host key for {where} has CHANGED (got {exc.key.get_name()} "
            f"{exc.key.fingerprint}, known_hosts has {exc.expected_key.get_name()} "
            f"{exc.expected_key.fingerprint}): refusing to connect")
    if isinstance(exc, paramiko.AuthenticationException):
        if str(exc) == "Authentication timeout.":  # no answer in time: a busy host, not a "no"
            return TransientTransportError(f"authentication to {where} timed out")
        return AuthenticationError(f"authentication to {where} failed: {exc}")
    if isinstance(exc, ConnectionRefusedError):
        return TransientTransportError(f"cannot connect to {where}: connection refused")
    if isinstance(exc, (socket.timeout, TimeoutError)):
        return TransientTransportError(f"cannot connect to {where}: timed out")
    if isinstance(exc, OSError):
        kind = TransientTransportError if exc.errno in _TRANSIENT_ERRNOS or exc.errno is None \
            else TransportError
        return kind(f"cannot connect to {where}: {exc.strerror or exc}")
    text = str(exc).lower()  # paramiko.SSHException or EOFError
    kind = TransientTransportError if any(m in text for m in _TRANSIENT_SSH_MESSAGES) \
        or isinstance(exc, EOFError) else TransportError
    return kind(f"SSH to {where} failed: {exc}")
