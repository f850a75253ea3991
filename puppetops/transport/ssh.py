"""SSH transport: a paramiko client per target, opened once and reused for every step.

Each connection is a paramiko ``SSHClient`` set up for strict host-key checking against the
run's one parsed known_hosts copy, on our own TCP socket (TCP_NODELAY). Fabric is not on this
path: a Fabric ``Connection`` writes to its Invoke config when it is made, and Invoke's
config is then briefly empty while it re-merges, so connections sharing one config, made in
many threads at once, now and then failed with "No attribute or config key found for
'gateway'" (seen as healthy hosts "unreachable" in 2 of 10 runs on 200 hosts). A Fabric
``Connection`` on the open client, with a config of its own, is there for what puppetops
does not wrap (``SshConnection.fabric``), made only when asked for.

Commands without stdin data run in one long-lived shell per connection (``_RemoteShell``,
inventory option ``persistent-shell``, default true): the target then forks a subshell per
command instead of opening an SSH session (sshd fork, session setup, ``$SHELL -c``, exec).
Commands with stdin data (``put``, sudo with a password), and every command when the option is
off, run on a fresh exec channel of the already-authenticated transport. Either way output is
read in the calling thread, woken by paramiko's buffers, rather than by a thread-per-stream
runner: a second step on 200 open connections then costs under a millisecond of controller CPU
per host (docs/benchmarks.md has the measurements).
"""
from __future__ import annotations

import base64
import errno
import hmac
import logging
import os
import secrets
import shlex
import socket
import threading
import time
from contextlib import contextmanager
from typing import Callable

import paramiko
from fabric import Config, Connection as FabricConnection
from paramiko.hostkeys import HostKeyEntry

from ..errors import (AuthenticationError, CommandTimeout, ConfigError, HostKeyError,
                      TransientTransportError, TransportError)
from ..inventory.schema import setting
from ..target import Target
from .. import secrets as masking
from .base import CommandOutput, Connection, Session

# paramiko's transport thread wakes every 0.1 s to look for a close; 200 idle connections then
# burn ~30 ms of CPU per second and wake the GIL 2,000 times. After the handshake 1 s is enough:
# close() wakes the thread itself, and commands have their own timeouts.
IDLE_POLL_SECONDS = 1.0

# paramiko logs a failed handshake (a port that does not speak SSH, a reset) as an error with
# its traceback; with no logging configured Python prints that on stderr. Every such fault
# already reaches the operator as the target's result, so paramiko's own copy is dropped unless
# the caller configures logging (a handler on "paramiko" or the root logger still gets it).
logging.getLogger("paramiko").addHandler(logging.NullHandler())
# How long one wait for output may block before the loop looks again (a safety net only: the
# buffers wake the reader as soon as data, EOF or the exit status arrives).
_WAKE_CHECK_SECONDS = 1.0
SESSION_KEEPALIVE_SECONDS = 30
_TRANSIENT_ERRNOS = {errno.ECONNREFUSED, errno.ECONNRESET, errno.ETIMEDOUT, errno.EHOSTUNREACH,
                     errno.ENETUNREACH, errno.ECONNABORTED, errno.EPIPE}
_TRANSIENT_SSH_MESSAGES = ("banner", "negotiat", "session not active", "unable to connect",
                           "no existing session", "connection reset", "eof")
# What connecting may raise because of the network, the peer or the credentials; anything
# else is a bug and is not dressed up as a transport fault (see _map_connect_error).
_CONNECT_FAULTS = (TransportError, OSError, EOFError, paramiko.SSHException)


class SshCredentials:
    """Known-hosts files and private keys, parsed once per run and shared by every connection.

    Parsing a 200-line known_hosts file for each of 200 connections would cost more CPU than
    the handshakes themselves. A file that cannot be used raises ``ConfigError`` naming it.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._known_hosts: dict[str, _KnownHosts] = {}
        self._keys: dict[str, paramiko.PKey] = {}

    def known_hosts(self, path: str, host: str, port: int) -> paramiko.HostKeys:
        """The entries of the known_hosts file ``path`` that can match ``host``:``port``."""
        with self._lock:
            if path not in self._known_hosts:
                self._known_hosts[path] = _KnownHosts(path)
            return self._known_hosts[path].for_host(host, port)

    def private_key(self, path: str) -> paramiko.PKey:
        with self._lock:
            if path not in self._keys:
                self._keys[path] = _load_private_key(path)
            return self._keys[path]


def _load_private_key(path: str) -> paramiko.PKey:
    where = f"private key file {path} (config.ssh.private-key)"
    if not os.path.exists(path):
        raise ConfigError(f"{where} does not exist; point it at the key to log in with")
    try:
        return paramiko.PKey.from_path(path)
    except paramiko.PasswordRequiredException:
        raise ConfigError(f"{where} is encrypted; puppetops needs a key without a passphrase "
                          "(or one decrypted for the run)") from None
    except OSError as exc:
        raise ConfigError(f"{where} cannot be read: {exc.strerror or exc}") from None
    except (paramiko.SSHException, ValueError) as exc:
        raise ConfigError(f"{where} is not a private key paramiko can read ({exc}); use an "
                          "OpenSSH or PEM private key file") from None


class _KnownHosts:
    """One parsed known_hosts file, indexed by host name.

    paramiko's ``HostKeys.lookup`` scans every entry, hashing the name in Python for each hashed
    (``|1|``, OpenSSH's ``HashKnownHosts``) entry, and ``SSHClient.connect`` looks up twice: N
    connections against an N-line file cost O(N²), measured 0.2 s of CPU at 1,000 plain entries
    and 0.9 s at 200 hashed ones (23 s at 1,000). Here plain names are a dict lookup and hashed
    entries are matched with one C-level HMAC each (1.3 s at 1,000 hashed entries, 0.06 s at
    200); every connection then gets a small ``HostKeys`` with only its matching entries, on
    which paramiko's own checks give the same answers as on the whole file.
    """

    def __init__(self, path: str):
        # (line position, entry): matches are returned in file order, as paramiko would
        self._by_name: dict[str, list[tuple[int, HostKeyEntry]]] = {}
        self._hashed: list[tuple[bytes, bytes, int, HostKeyEntry]] = []
        for position, entry in enumerate(_read_entries(path)):
            for name in entry.hostnames:
                if not name.startswith("|1|"):
                    self._by_name.setdefault(name, []).append((position, entry))
                    continue
                salt, _, digest = name[3:].partition("|")
                try:
                    self._hashed.append((base64.b64decode(salt), base64.b64decode(digest),
                                         position, entry))
                except ValueError:  # a mangled hash matches no name, for paramiko too
                    pass

    def for_host(self, host: str, port: int) -> paramiko.HostKeys:
        """Entries for the name paramiko will look up (``host``, or ``[host]:port`` off 22)."""
        name = host if port == 22 else f"[{host}]:{port}"
        raw = name.encode()
        matches = list(self._by_name.get(name, ()))
        matches += [(position, entry) for salt, digest, position, entry in self._hashed
                    if hmac.compare_digest(hmac.digest(salt, raw, "sha1"), digest)]
        keys = paramiko.HostKeys()
        keys._entries = [entry for _, entry in sorted(matches, key=lambda match: match[0])]
        return keys


def _read_entries(path: str) -> list[HostKeyEntry]:
    """The file's entries in order, as ``HostKeys.load`` reads them but in linear time.

    ``load`` also drops a name already listed with the same key, looking each one up in all
    earlier lines (O(N²): 0.2 s for 1,000 lines); a duplicate is harmless here, as lookups
    return the first match either way.
    """
    where = f"known_hosts file {path}"
    try:
        with open(path, "rb") as handle:
            data = handle.read()
    except FileNotFoundError:
        raise ConfigError(f"{where} does not exist; create it with the hosts' keys (ssh-keyscan, "
                          "then check the fingerprints) or set config.ssh.known-hosts-file to "
                          "yours") from None
    except OSError as exc:
        raise ConfigError(f"{where} cannot be read: {exc.strerror or exc}") from None
    try:
        text = data.decode()
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise ConfigError(f"{where} is not a known_hosts file: line {line} is not text (byte "
                          f"{data[exc.start]:#04x}); it must hold OpenSSH known_hosts lines") from None
    entries = []
    for lineno, line in enumerate(text.split("\n"), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        try:
            entry = HostKeyEntry.from_line(line, lineno)
        except paramiko.SSHException:
            continue
        if entry is not None:
            entries.append(entry)
    return entries


class _Reject(paramiko.MissingHostKeyPolicy):
    def missing_host_key(self, client, hostname, key):  # noqa: D102 - paramiko hook
        raise HostKeyError(
            f"host key for {hostname} is not in the known_hosts file ({key.get_name()} "
            f"{key.fingerprint}); add it or set host-key-check: false")


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
        self.port = int(target.port or setting(self.config, "ssh", "port"))
        self.connect_timeout = float(setting(self.config, "ssh", "connect-timeout"))
        self.handshakes = 0
        self.persistent_shell = bool(setting(self.config, "ssh", "persistent-shell"))
        self.host_key_check = bool(setting(self.config, "ssh", "host-key-check"))
        self.known_hosts_file = os.path.expanduser(setting(self.config, "ssh", "known-hosts-file"))
        key = self.config.get("private-key")
        self.private_key_file = os.path.expanduser(key) if key else None
        self.shells_started = 0  # persistent shells opened so far (1 per connection = reuse)
        self._shell: _RemoteShell | None = None
        self._shell_lock = threading.Lock()
        self._client: paramiko.SSHClient | None = None
        self._fabric: FabricConnection | None = None

    @property
    def login_user(self) -> str:
        return self.target.user or setting(self.config, "ssh", "user")

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
            # the run's one parsed copy (see SshCredentials and _KnownHosts).
            client._system_host_keys = self.credentials.known_hosts(self.known_hosts_file,
                                                                    self.host, self.port)
            client.set_missing_host_key_policy(_Reject())
        else:
            client.set_missing_host_key_policy(_AcceptInMemory())
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
        shutdown does (EOF), so no thread lingers after the run: at 200 hosts the CLI exits
        0.12 s sooner, as the kernel no longer tears down 200 blocked threads at exit.
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
            out, err = _read_until_exit(chan, start + timeout)
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
                    shell = self._shell = _RemoteShell(self._transport, self.connect_timeout)
                    self.shells_started += 1
                try:
                    out, err, code = shell.run(command, deadline)
                    break
                except _ShellNotStarted:
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

    def end(self, timeout: float) -> CommandOutput:
        start = time.monotonic()
        try:
            if not self.chan.closed:
                self.chan.shutdown_write()
            out, err = _read_until_exit(self.chan, start + timeout)
            code = self.chan.recv_exit_status()
        except (OSError, EOFError, paramiko.SSHException) as exc:
            raise TransientTransportError(f"connection lost: {exc}") from None
        finally:
            self.chan.close()
        output = _output(self.command, bytes(self.out) + out, err, code, self.started)
        output.stdout, output.stderr = masking.mask(output.stdout), masking.mask(output.stderr)
        return output


class _ShellNotStarted(Exception):
    """The persistent shell ended before it began the command (the command did not run)."""


class _RemoteShell:
    """One long-lived shell on the target that runs framed commands read from its stdin.

    **Which shell.** An exec channel runs ``$SHELL -c CMD``: sshd starts the login shell. The
    persistent shell is that same shell, started the same way, so commands see what they saw
    on an exec channel: the same shell (bash syntax and builtins for a bash login shell), the
    same environment (sshd's, ``SHLVL`` included), umask, home directory and start-up files
    (bash reads ``~/.bashrc`` for ssh commands in both cases, here once per connection). No
    terminal: non-interactive, no prompt, no profile, no output of its own. Its ``-c`` string
    (``_launch``) is the first command's frame, then:

    - **bash** (``$BASH_VERSION`` set): a loop in that very process, ``while IFS= read -r -d ''
      f; do eval "unset f;$f"; done``, over NUL-terminated frames. No second exec, so a
      connection's first command costs the target little more than an exec channel did (one
      subshell fork), and ``$0``, ``$-`` and ``$SHLVL`` are what ``bash -c`` shows. ``f`` is
      unset before each frame runs and ``BASH_EXECUTION_STRING`` once, so neither shows.
    - **any other shell**: it prints a tag and replaces itself with ``exec "$SHELL"``, a new
      instance of the login shell that reads newline-terminated frames as its script; the
      client sends the first frame when it sees the tag. (``$0`` is then the shell's path.)

    A login shell that cannot parse the ``-c`` string (fish, csh) or exec itself ends before
    the first command starts; the connection then falls back to exec channels
    (``SshConnection._exec_in_shell``).

    **Framing.** Each command is one frame (``_frame``), a single line here cut in two::

        printf pops%s Ts;printf pops%s Ts >&2;(eval 'CMD')</dev/null;
        printf pops%s%d\\\\n Te $?;printf pops%s Te >&2

    with a random token ``T`` (64 bits) per command: start marker ``popsTs`` and end marker
    ``popsTe`` on both streams, the exit status after the end marker on stdout. A marker never
    appears whole in the script text (``pops`` and ``T`` are separate arguments), so nothing
    that shows the script (a ``-c`` string, a trace) can fake it. The command runs in a
    subshell, so ``exit``, ``cd``, ``export``, ``set -e``, traps and even syntax errors (caught
    by ``eval``) end with it and never reach the next command; its stdin is /dev/null, so a
    command that reads stdin gets EOF at once instead of eating the following frames. What the
    command writes is exactly what lies between the markers on each stream (no newline added);
    anything before the start markers is stale output (start-up files, or a background job of
    an earlier command), anything after the end markers belongs to no command. The frame is
    short because the shell reads a piped script one byte per read(2).

    **Differences from an exec channel**, all inside the command's own view: ``$$`` is the
    persistent shell's PID (the same for every command of the connection; ``kill $$`` ends the
    shell, reported as exit status -1 with a note on stderr, and the next command gets a new
    one); the shell's own error messages count lines across the connection's commands
    (``bash: line 3: ...`` for ``bash: line 1: ...``; a syntax error is reported by ``eval``);
    ``BASH_EXECUTION_STRING`` is unset; a background job that keeps stdout open no longer holds
    the command's result back (an exec channel waits for it) and may write into a later
    command's output; and a command killed by a signal exits 128+N where an exec channel may
    report -1.
    """

    def __init__(self, transport: paramiko.Transport, open_timeout: float):
        self.chan = transport.open_session(timeout=open_timeout)
        self.launched = False
        self.terminator: bytes | None = None  # after each frame: b"\0" (bash loop) or b"\n"
        self.commands = 0  # commands started in this shell
        self.wake = threading.Event()
        self.chan.in_buffer.set_event(_Wake(self.wake))
        self.chan.in_stderr_buffer.set_event(_Wake(self.wake))

    @staticmethod
    def _frame(command: str, token: str) -> str:
        """The one-line script that runs ``command`` framed by ``token``'s markers."""
        return (f"printf pops%s {token}s;printf pops%s {token}s >&2;"
                f"(eval {shlex.quote(command)})</dev/null;"
                f"printf pops%s%d\\\\n {token}e $?;printf pops%s {token}e >&2")

    @staticmethod
    def _launch(frame: str, token: str) -> str:
        """The channel's ``-c`` string: bash runs ``frame`` and then its loop; other shells
        print the ``popsTp`` tag and exec a new login shell that waits for ``frame``."""
        return ('if [ -n "${BASH_VERSION-}" ];then unset BASH_EXECUTION_STRING;'
                f"{frame}\n"
                "while IFS= read -r -d '' f;do eval \"unset f;$f\";done;"
                f'else printf pops%s {token}p;exec "${{SHELL:-/bin/sh}}";fi')

    def usable(self, transport: paramiko.Transport) -> bool:
        chan = self.chan
        return (self.terminator is not None and chan.get_transport() is transport
                and not (chan.closed or chan.eof_received or chan.exit_status_ready()))

    def close(self) -> None:
        self.chan.close()

    def run(self, command: str, deadline: float) -> tuple[bytes, bytes, int]:
        """Run one command; its stdout, stderr and exit status.

        Raises ``_ShellNotStarted`` when the shell ended before starting the command,
        ``CommandTimeout`` (channel closed) at the deadline, ``EOFError`` when the connection
        is gone.
        """
        chan = self.chan
        token = secrets.token_hex(8)
        frame = self._frame(command, token)
        while chan.recv_ready():  # stale output: a background job of an earlier command
            chan.recv(65536)
        while chan.recv_stderr_ready():
            chan.recv_stderr(65536)
        if self.launched:
            self._send(frame.encode() + self.terminator)
        else:
            self._send(None, launch=self._launch(frame, token))
            self.launched = True
        start, end = f"pops{token}s".encode(), f"pops{token}e".encode()
        out, err = _Framed(start, end), _Framed(start, end)
        tag = f"pops{token}p".encode()
        counted = False
        while True:
            self.wake.clear()
            ended = chan.eof_received or chan.closed  # before draining: EOF follows the last data
            while chan.recv_ready():
                out.add(chan.recv(65536))
            while chan.recv_stderr_ready():
                err.add(chan.recv_stderr(65536))
            if self.terminator is None:  # a new shell: which kind is it?
                if tag in out.buf:
                    self.terminator = b"\n"  # an exec'd shell, reading its script: send the frame
                    self._send(frame.encode() + self.terminator)
                elif out.started:
                    self.terminator = b"\0"  # bash ran the frame itself, and loops
            if out.started and not counted:
                self.commands += 1
                counted = True
            status = out.status()
            if status is not None and err.ended():
                return out.body(), err.body(), status
            if ended:
                return self._ended(out, err, status, deadline)
            _wait(self.wake, chan, deadline)

    def _send(self, data: bytes | None, launch: str | None = None) -> None:
        """Send a frame (or launch the shell with one). A channel that closed meanwhile means
        the shell ended before the command started (e.g. a login shell that execs $SHELL and
        that is not a shell): ``_ShellNotStarted``, unless the whole connection is gone."""
        try:
            if launch is not None:
                self.chan.exec_command(launch)
            else:
                self.chan.sendall(data)
        except OSError:  # paramiko: "Socket is closed"
            if self.chan.get_transport().is_active():
                raise _ShellNotStarted() from None
            raise

    def _ended(self, out: "_Framed", err: "_Framed", status: int | None,
               deadline: float) -> tuple[bytes, bytes, int]:
        """The shell's channel closed while a command was in it."""
        chan = self.chan
        if not chan.get_transport().is_active():
            raise EOFError("connection closed")
        if not out.started:
            raise _ShellNotStarted()
        if status is not None:  # the command finished; only the shell's last printf is missing
            return out.body(), err.body(), status
        while not chan.exit_status_ready() and not chan.closed and time.monotonic() < deadline:
            chan.status_event.wait(min(deadline - time.monotonic(), 0.2))
        why = (f"exit status {chan.exit_status}" if chan.exit_status_ready() and chan.exit_status >= 0
               else "killed")
        note = (f"puppetops: the remote shell running this command ended ({why}) before the "
                "command did; the next command starts a new one\n").encode()
        chan.close()
        return out.body(), err.body() + note, -1


class _Framed:
    """One stream of a framed command: the bytes between its start and end markers.

    Markers are looked for only in the bytes not searched yet (plus a marker's length of
    overlap), so megabytes of output cost one pass.
    """

    def __init__(self, start: bytes, end: bytes):
        self.start_marker, self.end_marker = start, end
        self.buf = bytearray()
        self.begin: int | None = None  # first byte of the command's output
        self.finish: int | None = None  # the end marker's position
        self._status: int | None = None
        self._searched = 0

    def add(self, data: bytes) -> None:
        self.buf += data
        if self.begin is None:
            at = self.buf.find(self.start_marker, max(0, self._searched - len(self.start_marker)))
            if at < 0:
                self._searched = len(self.buf)
                return
            self.begin = self._searched = at + len(self.start_marker)
        if self.finish is None:
            at = self.buf.find(self.end_marker, max(self.begin, self._searched - len(self.end_marker)))
            if at < 0:
                self._searched = len(self.buf)
                return
            self.finish = at

    @property
    def started(self) -> bool:
        return self.begin is not None

    def ended(self) -> bool:
        return self.finish is not None

    def status(self) -> int | None:
        """The exit status after the end marker (stdout), once its line is complete."""
        if self.finish is None or self._status is not None:
            return self._status
        after = self.finish + len(self.end_marker)
        newline = self.buf.find(b"\n", after, after + 4)  # 0-255
        if newline >= 0 and self.buf[after:newline].isdigit():
            self._status = int(self.buf[after:newline])
        return self._status

    def body(self) -> bytes:
        if self.begin is None:
            return b""
        return bytes(self.buf[self.begin:self.finish])


def _output(command: str, out: bytes, err: bytes, code: int, start: float) -> CommandOutput:
    return CommandOutput(command, code, out.decode(errors="replace"), err.decode(errors="replace"),
                         time.monotonic() - start)


def _open_socket(host: str, port: int, timeout: float) -> socket.socket:
    """The TCP connection for paramiko, with Nagle's algorithm off.

    paramiko leaves Nagle on, so a small SSH message written while an earlier one is still
    unacknowledged waits for the peer's delayed ACK (40 ms on Linux). Measured on loopback: a
    handshake took 66 ms instead of 20, and each command after the first on a busy connection
    48 ms instead of 2.
    """
    sock = socket.create_connection((host, port), timeout=timeout)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


class _Wake:
    """What paramiko's buffers signal: ``set`` wakes the reader, ``clear`` is ignored.

    ``Channel.fileno`` would make an OS pipe per command for ``select``, and after EOF that pipe
    stays readable, so a select loop spins until the exit status arrives. Here the reader clears
    the one shared event itself, before draining both buffers, so no wake-up is lost.
    """

    def __init__(self, event: threading.Event):
        self.set = event.set

    def clear(self) -> None:
        """A buffer that was just drained must not clear the other buffer's wake-up."""


def _read_until_exit(chan: paramiko.Channel, deadline: float) -> tuple[bytes, bytes]:
    """Drain stdout and stderr until the channel's EOF, then wait for the exit status."""
    wake = threading.Event()
    chan.in_buffer.set_event(_Wake(wake))
    chan.in_stderr_buffer.set_event(_Wake(wake))
    out, err = bytearray(), bytearray()
    while True:
        wake.clear()
        done = chan.eof_received or chan.closed  # before draining: EOF follows the last data
        while chan.recv_ready():
            out += chan.recv(65536)
        while chan.recv_stderr_ready():
            err += chan.recv_stderr(65536)
        if done:
            break
        _wait(wake, chan, deadline)
    while not chan.exit_status_ready():  # the exit status comes right after EOF (or a close)
        _wait(chan.status_event, chan, deadline)
    return bytes(out), bytes(err)


def _wait(event: threading.Event, chan: paramiko.Channel, deadline: float) -> None:
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        chan.close()
        raise CommandTimeout()
    event.wait(min(remaining, _WAKE_CHECK_SECONDS))


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
