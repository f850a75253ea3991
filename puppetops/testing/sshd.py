"""Real OpenSSH ``sshd`` daemons on loopback, for testing plans and transports end to end.

Like ``fabric.testing`` but against the real thing: :class:`SshdFleet` starts one ``sshd -D``
per host, each on its own loopback alias (``127.0.1.N``; Linux routes all of 127/8 to ``lo``,
so binding needs no ``ip addr``), with its own ed25519 host key and log, key-only login with
one client key, and a ``known_hosts`` file listing every host so host-key checking stays ON.

Why real daemons: connection reuse, retries on a late or refused daemon, changed host keys,
sudo prompts and MaxStartups behaviour are exactly what mocks get wrong, and idle daemons
are cheap (docs/benchmarks.md, "How it measures").

Process hygiene: every daemon is our own ``subprocess.Popen`` child; it is stopped by its
recorded PID only, with its connection children (:mod:`puppetops.procs`), and a PID read back
from disk is only signalled when its command line still names our config.
"""
from __future__ import annotations

import atexit
import json
import os
import pwd
import random
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, NamedTuple, Optional, Sequence

import tenacity

from .. import procs
from ..polling import wait_while
from ..transport.credentials import known_hosts_name

__all__ = [
    "Endpoint",
    "FleetError",
    "FleetHost",
    "SshdFleet",
    "SudoUnavailableError",
    "find_sshd",
    "generate_ed25519_key",
]

SSHD_CANDIDATES = ("/usr/sbin/sshd", "/usr/local/sbin/sshd")
# sshd refuses to start as root without its privilege-separation chroot; Debian's systemd unit
# creates it, and on boxes without systemd nobody does.
PRIVSEP_DIR = Path("/run/sshd")
SUDOERS_DIR = Path("/etc/sudoers.d")
USER_MARKER = "puppetops test user (SshdFleet)"
# Per-user key file for users we create: sshd reads AuthorizedKeysFile *as the user*, and the
# fleet's workdir usually lives under a 0700 pytest tmp dir that user cannot traverse.
USER_KEYS_NAME = ".puppetops-test-authorized_keys"
_ACCEPTED_RE = re.compile(r"\bAccepted [\w/-]+ for \S+ from ")
_USER_RE = re.compile(r"^[a-z_][a-z0-9_-]{0,30}$")


class FleetError(RuntimeError):
    """The fleet could not do what was asked (a daemon did not start, a user clash, ...)."""


class SudoUnavailableError(FleetError):
    """``sudo``/``visudo`` are not installed, so sudo users cannot be created."""


@dataclass
class FleetHost:
    """One daemon of the fleet. ``pid`` changes when the host is restarted (None while down)."""

    name: str
    address: str
    port: int
    pid: Optional[int]
    log_path: Path
    index: int = 0
    config_path: Optional[Path] = None
    host_key_path: Optional[Path] = None
    pid_path: Optional[Path] = None

    @property
    def uri(self) -> str:
        return f"{self.address}:{self.port}"


class Endpoint(NamedTuple):
    """An ``address:port`` that is not an sshd (see :meth:`SshdFleet.silent_host`)."""

    address: str
    port: int

    @property
    def uri(self) -> str:
        return f"{self.address}:{self.port}"

    def __str__(self) -> str:
        return self.uri


def find_sshd() -> Optional[str]:
    """Absolute path of ``sshd`` (it must be absolute: sshd re-executes itself), or None."""
    for candidate in SSHD_CANDIDATES:
        if os.access(candidate, os.X_OK):
            return candidate
    found = shutil.which("sshd")
    return os.path.abspath(found) if found else None


def generate_ed25519_key(path: Path, comment: str = "") -> str:
    """Write an OpenSSH ed25519 private key (0600) and ``.pub``; return the public key line.

    Done in-process with ``cryptography`` (a paramiko dependency) rather than ``ssh-keygen``:
    a 200-host fleet would otherwise fork 200 processes just for keys.
    """
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    key = Ed25519PrivateKey.generate()
    private = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH, serialization.NoEncryption()
    )
    public = key.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    line = public.decode() + (f" {comment}" if comment else "")
    for p in (path, Path(f"{path}.pub")):
        if p.exists():
            p.unlink()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)  # ssh/sshd refuse looser keys
    with os.fdopen(fd, "wb") as fh:
        fh.write(private)
    Path(f"{path}.pub").write_text(line + "\n")
    return line


def _quote(value: object) -> str:
    """Quote an sshd_config argument so paths with spaces survive."""
    return '"' + str(value).replace('"', '\\"') + '"'


class _HostState:
    """Mutable per-host process state, guarded by ``lock``."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.proc: Optional[subprocess.Popen] = None
        self.cancel: Optional[threading.Event] = None  # set to cancel a pending delayed start
        self.thread: Optional[threading.Thread] = None
        self.error: Optional[BaseException] = None


class SshdFleet:
    """``count`` sshd daemons: host ``i`` (0-based) is ``host{i+1}`` on ``{base_address}{i+1}:{port}``.

    ``port=None`` picks a free port (20000-32767, outside the kernel's ephemeral range) so that
    fleets of parallel test runs on a shared box do not collide. ``set_env`` goes into every
    daemon's ``SetEnv``; the default ``SHLVL=1`` makes Debian's bash skip ``~/.bashrc`` for ssh
    commands (bash only reads it when ``SHLVL < 2`` after its own increment): root's bashrc here
    runs ``pyenv init``, ~190 ms CPU per remote command, which would drown every measurement.
    """

    def __init__(
        self,
        workdir: "os.PathLike[str] | str",
        count: int = 3,
        base_address: str = "127.0.1.",
        port: Optional[int] = 2222,
        *,
        set_env: Optional[Dict[str, str]] = None,
        sshd_path: Optional[str] = None,
        extra_sshd_config: Sequence[str] = (),
        start_timeout: float = 30.0,
    ) -> None:
        if not 1 <= count <= 254:
            raise ValueError(f"count must be 1..254 (one loopback address each), got {count}")
        if not base_address.endswith(".") or not base_address.startswith("127."):
            raise ValueError(f"base_address must be a loopback prefix like '127.0.1.', got {base_address!r}")
        self.workdir = Path(workdir).resolve()
        self.count = count
        self.base_address = base_address
        self._auto_port = port is None
        self.port: int = port if port is not None else 0
        self.set_env = {"SHLVL": "1"} if set_env is None else dict(set_env)
        self.sshd_path = sshd_path
        self.extra_sshd_config = list(extra_sshd_config)
        self.start_timeout = start_timeout
        self.user = pwd.getpwuid(os.geteuid()).pw_name
        self.client_key_path = self.workdir / "client_ed25519"
        self.known_hosts_path = self.workdir / "known_hosts"
        self.authorized_keys_dir = self.workdir / "authorized_keys"
        self.hosts: List[FleetHost] = []
        self._state: List[_HostState] = []
        self._client_pub = ""
        self._endpoints: List[socket.socket] = []
        self._accepted: List[socket.socket] = []
        self._stop_event = threading.Event()
        self._threads: List[threading.Thread] = []
        self._users: Dict[str, bool] = {}  # name -> has sudoers file
        self._started = False

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> "SshdFleet":
        """Write keys, configs and known_hosts; start every daemon, then wait for every banner.

        All daemons are spawned first and waited for together, so start-up costs roughly one
        daemon's start, not ``count`` of them. On any failure everything started is stopped
        again and :class:`FleetError` carries the failing host's log tail.
        """
        if self._started:
            raise FleetError("fleet already started")
        self.sshd_path = self.sshd_path or find_sshd()
        if not self.sshd_path:
            raise FleetError("sshd not found (install the Debian package openssh-server)")
        if os.geteuid() == 0 and not PRIVSEP_DIR.is_dir():
            PRIVSEP_DIR.mkdir(mode=0o755, parents=True, exist_ok=True)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.kill_stale(self.workdir)
        self._client_pub = generate_ed25519_key(self.client_key_path, "puppetops-sshd-fleet")
        self.authorized_keys_dir.mkdir(exist_ok=True)
        (self.authorized_keys_dir / self.user).write_text(self._client_pub + "\n")
        self._stop_event.clear()
        atexit.register(self.stop)
        self._started = True
        attempts = 5 if self._auto_port else 1
        for attempt in range(attempts):
            if self._auto_port:
                self.port = self._pick_port()
            self._prepare_hosts()
            try:
                self._validate_config(self.hosts[0])
                for i in range(self.count):
                    self._spawn(i)
                self._wait_all_ready(time.monotonic() + self.start_timeout)
                return self
            except FleetError as exc:
                self._stop_daemons()
                if attempt + 1 < attempts and "Address already in use" in str(exc):
                    continue  # lost a race for the auto-picked port; pick another
                self.stop()
                raise
        raise AssertionError("unreachable")

    def stop(self) -> None:
        """Stop every daemon (and its connection children) by recorded PID, close fake endpoints,
        remove users this fleet added. Idempotent; also registered with ``atexit``."""
        if not self._started:
            return
        self._stop_event.set()
        self._stop_daemons()
        for sock in self._endpoints + self._accepted:
            try:
                sock.close()
            except OSError:
                pass
        self._endpoints.clear()
        self._accepted.clear()
        for thread in self._threads:
            thread.join(timeout=5)
        self._threads.clear()
        for name in list(self._users):
            try:
                self._remove_user(name)
            except FleetError:
                pass
        atexit.unregister(self.stop)
        self._started = False

    def __enter__(self) -> "SshdFleet":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @staticmethod
    def kill_stale(workdir: "os.PathLike[str] | str") -> List[int]:
        """Stop daemons left by an earlier fleet in ``workdir`` (e.g. a killed test run).

        Uses each host's pid file, and signals the PID only if its command line still names that
        host's sshd_config (so a recycled PID is never hit). Returns the PIDs signalled.
        """
        killed: List[int] = []
        for pid_path in Path(workdir).glob("hosts/*/sshd.pid"):
            try:
                pid = int(pid_path.read_text().split()[0])
            except (OSError, ValueError, IndexError):
                continue
            # sshd rewrites its title ("sshd: /usr/sbin/sshd -D -f CONFIG ... [listener] ..."),
            # so /proc/PID/cmdline is one space-joined string: match a substring.
            config = f"-f {pid_path.parent / 'sshd_config'}"
            if config in " ".join(procs.cmdline(pid)) and procs.alive(pid):
                procs.terminate_tree(pid)
                os.kill(pid, signal.SIGTERM)
                if wait_while(lambda: procs.alive(pid), 5, 0.02):
                    os.kill(pid, signal.SIGKILL)
                killed.append(pid)
        return killed

    # ------------------------------------------------------------------ per host
    def start_host(self, i: int, delay: float = 0.0, wait: bool = False) -> None:
        """(Re)start host ``i``: stop it now if running, start it after ``delay`` seconds.

        The start happens in a background thread, so a test can begin connecting while the
        daemon is still down ("sshd starts two seconds late"). ``wait=True`` blocks until the
        daemon sends its banner instead.
        """
        self._check_index(i)
        self.stop_host(i)
        state = self._state[i]
        cancel = threading.Event()

        def run() -> None:
            if cancel.wait(delay):
                return
            with state.lock:
                if cancel.is_set():
                    return
                try:
                    self._spawn_locked(i)
                except BaseException as exc:  # reported by wait_ready()
                    state.error = exc

        thread = threading.Thread(target=run, name=f"sshd-fleet-start-{self.hosts[i].name}", daemon=True)
        with state.lock:
            state.cancel, state.thread, state.error = cancel, thread, None
        thread.start()
        if wait:
            self.wait_ready(i, timeout=delay + self.start_timeout)

    def stop_host(self, i: int) -> None:
        """Stop host ``i`` (cancelling a pending delayed start) by its recorded PID; wait for exit."""
        self._check_index(i)
        state = self._state[i]
        with state.lock:
            if state.cancel is not None:
                state.cancel.set()
            thread = state.thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=10)
        with state.lock:
            self._kill_locked(i)

    def wait_ready(self, i: int, timeout: float = 30.0) -> None:
        """Block until host ``i`` accepts TCP and sends its ``SSH-`` banner."""
        self._check_index(i)
        deadline = time.monotonic() + timeout
        thread = self._state[i].thread
        if thread is not None:
            thread.join(timeout=max(0.0, deadline - time.monotonic()))
        if self._state[i].error is not None:
            raise FleetError(f"{self.hosts[i].name}: could not start: {self._state[i].error}")
        self._wait_all_ready(deadline, only=[i])

    def regenerate_host_key(self, i: int, update_known_hosts: bool = False) -> str:
        """Give host ``i`` a new host key and restart it; return the new public key line.

        ``known_hosts`` keeps the old key unless ``update_known_hosts`` — the point is usually to
        prove that a client refuses the changed key.
        """
        self._check_index(i)
        host = self.hosts[i]
        self.stop_host(i)
        assert host.host_key_path is not None
        public = generate_ed25519_key(host.host_key_path, host.name)
        if update_known_hosts:
            self._write_known_hosts()
        self.start_host(i, wait=True)
        return public

    def connection_count(self, i: int) -> int:
        """Accepted SSH logins on host ``i`` so far (``Accepted <method> for`` lines in its log).

        One per authenticated connection, however many commands/channels it carries, so a test
        can prove connection reuse. The log survives restarts, so the count does too.
        """
        self._check_index(i)
        try:
            text = self.hosts[i].log_path.read_text(errors="replace")
        except FileNotFoundError:
            return 0
        return sum(1 for line in text.splitlines() if _ACCEPTED_RE.search(line))

    def wait_for_connection_count(self, i: int, expected: int, timeout: float = 5.0) -> int:
        """Poll :meth:`connection_count` until it reaches ``expected``; return the last count.

        sshd writes the "Accepted" line from its monitor process, which may land a moment after
        the client already sees the session, so exact assertions should poll.
        """
        return tenacity.Retrying(
            stop=tenacity.stop_after_delay(timeout), wait=tenacity.wait_fixed(0.02),
            retry=tenacity.retry_if_result(lambda count: count < expected),
            retry_error_callback=lambda state: state.outcome.result(),
        )(self.connection_count, i)

    def ssh_argv(self, i: int, command: str, user: Optional[str] = None,
                 options: Sequence[str] = ()) -> List[str]:
        """An OpenSSH client command line for host ``i`` with strict host-key checking.

        ``-F /dev/null`` keeps the caller's ~/.ssh/config out; ``curve25519-sha256`` avoids the
        default post-quantum KEX, which costs the client ~90 ms CPU per connection here.
        """
        self._check_index(i)
        host = self.hosts[i]
        argv = ["ssh", "-F", "/dev/null", "-i", str(self.client_key_path),
                "-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes",
                "-o", "StrictHostKeyChecking=yes", "-o", f"UserKnownHostsFile={self.known_hosts_path}",
                "-o", "KexAlgorithms=curve25519-sha256", "-p", str(host.port)]
        for option in options:
            argv += ["-o", option]
        return argv + [f"{user or self.user}@{host.address}", command]

    # ------------------------------------------------------------------ inventory
    def inventory_dict(self, group: str = "fleet", extra_config: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
        """A Bolt v2 inventory for the fleet: ``config.ssh`` with key, known_hosts and strict
        host-key checking, and one group with ``host1..hostN`` targets by address."""
        ssh: Dict[str, Any] = {
            "user": self.user,
            "port": self.port,
            "private-key": str(self.client_key_path),
            "known-hosts-file": str(self.known_hosts_path),
            "host-key-check": True,
        }
        ssh.update(extra_config or {})
        return {
            "config": {"ssh": ssh},
            "groups": [{"name": group, "targets": [{"name": h.name, "uri": h.address} for h in self.hosts]}],
        }

    def write_inventory(self, path: "os.PathLike[str] | str", group: str = "fleet",
                        extra_config: Optional[Dict[str, Any]] = None) -> Path:
        """Write :meth:`inventory_dict` as YAML to ``path`` and return it."""
        import yaml

        path = Path(path)
        path.write_text(yaml.safe_dump(self.inventory_dict(group, extra_config), sort_keys=False))
        return path

    # ------------------------------------------------------------------ fake endpoints
    def silent_host(self) -> Endpoint:
        """An address:port where connecting is refused at once (RST).

        The port is held by a socket that is bound but never listens, so no other process can
        start listening there while the fleet lives; closed by :meth:`stop`.
        """
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind(("127.0.0.1", 0))
        self._endpoints.append(sock)
        return Endpoint(*sock.getsockname())

    def blackhole_host(self) -> Endpoint:
        """An address:port that accepts TCP but never sends an SSH banner (to test timeouts).

        A daemon thread accepts and keeps every connection open, silent, until :meth:`stop`.
        """
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind(("127.0.0.1", 0))
        sock.listen(128)
        sock.settimeout(0.1)
        self._endpoints.append(sock)

        def serve() -> None:
            while not self._stop_event.is_set():
                try:
                    conn, _ = sock.accept()
                except socket.timeout:
                    continue
                except OSError:
                    return
                self._accepted.append(conn)

        thread = threading.Thread(target=serve, name="sshd-fleet-blackhole", daemon=True)
        thread.start()
        self._threads.append(thread)
        return Endpoint(*sock.getsockname())

    # ------------------------------------------------------------------ users
    def add_user(self, name: str, password: Optional[str] = None) -> None:
        """Create a real local user who can log in to every fleet host with the client key.

        Needs root. Refuses to touch an existing user unless an earlier fleet created it (its
        GECOS is :data:`USER_MARKER`). :meth:`stop` removes it again.
        """
        self._require_root("add_user")
        if not _USER_RE.match(name):
            raise ValueError(f"invalid user name {name!r}")
        try:
            existing = pwd.getpwnam(name)
        except KeyError:
            existing = None
        if existing is not None and existing.pw_gecos != USER_MARKER:
            raise FleetError(f"user {name!r} already exists and was not made by SshdFleet; not touching it")
        if existing is None:
            self._run(["useradd", "--create-home", "--shell", "/bin/bash", "--comment", USER_MARKER, name])
        self._users.setdefault(name, False)
        entry = pwd.getpwnam(name)
        if password is not None:
            self._run(["chpasswd"], input=f"{name}:{password}\n")
        else:
            # A locked account ("!" in shadow) is refused by sshd even for key logins (UsePAM no).
            self._run(["usermod", "--password", "*", name])
        keys = Path(entry.pw_dir) / USER_KEYS_NAME
        keys.write_text(self._client_pub + "\n")
        os.chown(keys, entry.pw_uid, entry.pw_gid)
        keys.chmod(0o600)
        (self.authorized_keys_dir / name).write_text(self._client_pub + "\n")

    def add_sudo_user(self, name: str, password: str) -> None:
        """:meth:`add_user` plus ``/etc/sudoers.d/puppetops-test-NAME`` (0440, checked with
        ``visudo -cf``): any command via sudo, only WITH the password, never cached
        (``timestamp_timeout=0``), so "without the password fails" holds on every call."""
        self._require_root("add_sudo_user")
        sudo, visudo = shutil.which("sudo"), shutil.which("visudo") or shutil.which("/usr/sbin/visudo")
        if not sudo or not visudo:
            raise SudoUnavailableError(
                "sudo is not installed on this machine (`which sudo`/`which visudo` found nothing); "
                "install the Debian package 'sudo' to use add_sudo_user()"
            )
        if not password:
            raise ValueError("a sudo test user needs a password")
        self.add_user(name, password)
        content = (
            "# Managed by puppetops.testing.sshd.SshdFleet; removed by remove_sudo_user()/stop().\n"
            f"Defaults:{name} timestamp_timeout=0, !lecture\n"
            f"{name} ALL=(ALL:ALL) ALL\n"
        )
        SUDOERS_DIR.mkdir(mode=0o750, exist_ok=True)
        # Validate outside sudoers.d (a broken file there would break sudo for everyone), then
        # move into place atomically; sudo ignores names containing '.', so the tmp is inert.
        fd, tmp = tempfile.mkstemp(prefix=".puppetops-test-", dir=SUDOERS_DIR)
        try:
            with os.fdopen(fd, "w") as fh:
                fh.write(content)
            os.chmod(tmp, 0o440)
            check = subprocess.run([visudo, "-cf", tmp], capture_output=True, text=True)
            if check.returncode != 0:
                raise FleetError(f"visudo rejected the sudoers snippet: {check.stdout}{check.stderr}")
            os.replace(tmp, self._sudoers_path(name))
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
        self._users[name] = True

    def remove_user(self, name: str) -> None:
        """Undo :meth:`add_user` (and a sudoers file, if any)."""
        self._require_root("remove_user")
        self._remove_user(name)

    remove_sudo_user = remove_user

    # ------------------------------------------------------------------ internals
    def _remove_user(self, name: str) -> None:
        self._sudoers_path(name).unlink(missing_ok=True)
        (self.authorized_keys_dir / name).unlink(missing_ok=True)
        try:
            entry = pwd.getpwnam(name)
        except KeyError:
            entry = None
        if entry is not None:
            if entry.pw_gecos != USER_MARKER:
                raise FleetError(f"user {name!r} was not made by SshdFleet; not removing it")
            # userdel refuses (exit 8) while a process of the user lives: end our sessions of
            # the user (one may still be starting or exiting around the client) and retry.
            def userdel() -> subprocess.CompletedProcess:
                self._end_user_sessions(entry.pw_uid)
                return subprocess.run(["userdel", "--remove", name], capture_output=True, text=True)

            proc = tenacity.Retrying(
                stop=tenacity.stop_after_delay(5), wait=tenacity.wait_fixed(0.05),
                retry=tenacity.retry_if_result(lambda proc: proc.returncode == 8),
                retry_error_callback=lambda state: state.outcome.result(),
            )(userdel)
            if proc.returncode != 0:
                raise FleetError(f"userdel failed ({proc.returncode}): {proc.stderr.strip()}")
        self._users.pop(name, None)

    def _end_user_sessions(self, uid: int) -> None:
        """Stop this fleet's sessions of ``uid`` (processes under our own listeners only)."""
        for state in self._state:
            proc = state.proc
            if proc is None or proc.poll() is not None:
                continue
            for conn_pid in procs.descendants(proc.pid):
                if procs.owner_uid(conn_pid) == uid:  # the session's unprivileged sshd: its parent (monitor) reaps it
                    procs.terminate_tree(conn_pid)
                    try:
                        os.kill(conn_pid, signal.SIGTERM)
                    except ProcessLookupError:
                        pass

    @staticmethod
    def _sudoers_path(name: str) -> Path:
        return SUDOERS_DIR / f"puppetops-test-{name}"

    @staticmethod
    def _require_root(what: str) -> None:
        if os.geteuid() != 0:
            raise FleetError(f"{what}() needs root (it creates real local users)")

    @staticmethod
    def _run(argv: List[str], input: Optional[str] = None) -> None:
        proc = subprocess.run(argv, input=input, capture_output=True, text=True)
        if proc.returncode != 0:
            raise FleetError(f"{argv[0]} failed ({proc.returncode}): {proc.stderr.strip()}")

    def _check_index(self, i: int) -> None:
        if not self.hosts:
            raise FleetError("fleet not started")
        if not 0 <= i < len(self.hosts):
            raise IndexError(f"host index {i} out of range 0..{len(self.hosts) - 1}")

    def _addresses(self) -> List[str]:
        return [f"{self.base_address}{i + 1}" for i in range(self.count)]

    def _pick_port(self) -> int:
        """A port free on every fleet address right now (the bind itself may still lose a race)."""
        for _ in range(100):
            port = random.randint(20000, 32767)
            socks: List[socket.socket] = []
            try:
                for address in self._addresses():
                    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                    socks.append(s)
                    s.bind((address, port))
                return port
            except OSError:
                continue
            finally:
                for s in socks:
                    s.close()
        raise FleetError("no free port found for the fleet")

    def _prepare_hosts(self) -> None:
        """(Re)write every host's key (kept if present), config, and the shared known_hosts."""
        self.hosts, self._state = [], []
        for i, address in enumerate(self._addresses()):
            hdir = self.workdir / "hosts" / f"host{i + 1}"
            hdir.mkdir(parents=True, exist_ok=True)
            host = FleetHost(
                name=f"host{i + 1}", address=address, port=self.port, pid=None,
                log_path=hdir / "sshd.log", index=i, config_path=hdir / "sshd_config",
                host_key_path=hdir / "ssh_host_ed25519_key", pid_path=hdir / "sshd.pid",
            )
            if not host.host_key_path.exists():  # type: ignore[union-attr]
                generate_ed25519_key(host.host_key_path, host.name)  # type: ignore[arg-type]
            host.config_path.write_text(self._sshd_config(host))  # type: ignore[union-attr]
            self.hosts.append(host)
            self._state.append(_HostState())
        self._write_known_hosts()

    def _sshd_config(self, host: FleetHost) -> str:
        lines = [
            "# Written by puppetops.testing.sshd.SshdFleet",
            f"ListenAddress {host.address}:{host.port}",
            f"HostKey {_quote(host.host_key_path)}",
            f"PidFile {_quote(host.pid_path)}",
            "PermitRootLogin prohibit-password",
            "PubkeyAuthentication yes",
            "PasswordAuthentication no",
            "KbdInteractiveAuthentication no",
            "UsePAM no",
            "StrictModes no",
            # %u: the fleet user's file in the workdir; %h/...: users made by add_user()
            f"AuthorizedKeysFile {_quote(self.authorized_keys_dir)}/%u %h/{USER_KEYS_NAME}",
            "MaxStartups 1000:30:2000",  # fan-out tests open hundreds of handshakes at once
            "MaxSessions 50",
            "UseDNS no",
            "LogLevel VERBOSE",
            "PrintMotd no",
            "PrintLastLog no",
            "X11Forwarding no",
            "Subsystem sftp internal-sftp",  # Fabric put/get
        ]
        if self.set_env:
            lines.append("SetEnv " + " ".join(f"{k}={v}" for k, v in self.set_env.items()))
        lines.extend(self.extra_sshd_config)
        return "\n".join(lines) + "\n"

    def _write_known_hosts(self) -> None:
        lines = []
        for host in self.hosts:
            assert host.host_key_path is not None
            key = Path(f"{host.host_key_path}.pub").read_text().split()
            lines.append(f"{known_hosts_name(host.address, host.port)} {key[0]} {key[1]}")
        self.known_hosts_path.write_text("\n".join(lines) + "\n")

    def _validate_config(self, host: FleetHost) -> None:
        """``sshd -t`` once, so a bad option fails with sshd's message instead of a timeout."""
        check = subprocess.run([self.sshd_path, "-t", "-f", str(host.config_path)],  # type: ignore[list-item]
                               capture_output=True, text=True)
        if check.returncode != 0:
            raise FleetError(f"sshd -t rejected {host.config_path}: {check.stderr.strip()}")

    def _spawn(self, i: int) -> None:
        with self._state[i].lock:
            self._spawn_locked(i)

    def _spawn_locked(self, i: int) -> None:
        host, state = self.hosts[i], self._state[i]
        if state.proc is not None and state.proc.poll() is None:
            return
        argv = [self.sshd_path, "-D", "-f", str(host.config_path), "-E", str(host.log_path)]
        state.proc = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            start_new_session=True,  # keep Ctrl-C in the test terminal from reaching the daemons
        )
        host.pid = state.proc.pid
        # sshd writes PidFile itself once listening; write it now too so kill_stale() works early.
        host.pid_path.write_text(f"{host.pid}\n")  # type: ignore[union-attr]

    def _kill_locked(self, i: int) -> None:
        """SIGTERM the connection children, then the listener; SIGKILL stragglers; reap."""
        host, state = self.hosts[i], self._state[i]
        proc = state.proc
        if proc is None:
            return
        if proc.poll() is None:
            procs.terminate_tree(proc.pid)
            proc.terminate()
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)
        state.proc = None
        host.pid = None

    def _stop_daemons(self) -> None:
        for i in range(len(self.hosts)):
            self.stop_host(i)

    def _wait_all_ready(self, deadline: float, only: Optional[List[int]] = None) -> None:
        """Poll every pending host until it sends ``SSH-``; fail fast if a daemon exits."""
        pending = list(range(len(self.hosts))) if only is None else list(only)

        def not_ready() -> List[int]:
            nonlocal pending
            pending = [i for i in pending if not self._ready(i)]
            return pending

        if wait_while(not_ready, max(0.0, deadline - time.monotonic()), 0.02):
            names = ", ".join(self.hosts[i].name for i in pending)
            raise FleetError(f"sshd not ready before timeout: {names}: {self._log_tail(pending[0])}")

    def _ready(self, i: int) -> bool:
        """Host ``i`` sends its banner; :class:`FleetError` if its daemon exited."""
        proc = self._state[i].proc
        if proc is not None and proc.poll() is not None:
            raise FleetError(f"{self.hosts[i].name}: sshd exited with {proc.returncode}: {self._log_tail(i)}")
        return proc is not None and self._banner_ok(self.hosts[i])

    @staticmethod
    def _banner_ok(host: FleetHost) -> bool:
        try:
            with socket.create_connection((host.address, host.port), timeout=2) as sock:
                sock.settimeout(2)
                return sock.recv(64).startswith(b"SSH-")
        except OSError:
            return False

    def _log_tail(self, i: int, lines: int = 5) -> str:
        try:
            text = self.hosts[i].log_path.read_text(errors="replace")
        except OSError:
            return "(no log)"
        return " | ".join(text.strip().splitlines()[-lines:]) or "(empty log)"

    def describe(self) -> str:
        """One JSON line per host, for debugging a failing test."""
        return "\n".join(json.dumps({"name": h.name, "uri": h.uri, "pid": h.pid, "log": str(h.log_path)})
                         for h in self.hosts)
