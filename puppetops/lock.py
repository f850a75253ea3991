"""The run lock: at most one puppetops run at a time per host, whichever way it was started.

What is locked is the *host*, not the inventory file or the user's session: two inventory
copies, a symlink to one, cron (no ``XDG_RUNTIME_DIR``) and a login shell, the CLI and the
Python API all name the same hosts, so they all meet on the same locks. A host is identified
by transport, resolved address and port (``host_key``), never by the name an inventory gives
it, so ``main``, ``puppet.example.com`` and its address are one host.

The locks live in one fixed, system-wide folder (``LOCK_DIRS``), never one derived from the
environment, so runs by different users (cron's account, an operator's) exclude each other
too. Each is an ``flock`` on a file per host: the kernel drops it when the process ends, even
on SIGKILL, so no stale lock can outlive its run. A run takes its hosts' locks in sorted
order and without waiting; the first one held refuses the whole run (``LockHeld``, exit 75)
before anything was done, naming the host and who holds it (read from the lock file).

This only sees runs started on this controller; ``remote_lock`` adds a lock on the main
server for runs of several controllers.
"""
from __future__ import annotations

import fcntl
import getpass
import hashlib
import json
import os
import re
import socket
import stat
import sys
import time
from typing import Any, Iterable

from . import secrets
from .errors import LockHeld, PuppetopsError
from .inventory.schema import target_setting
from .target import Target

# Where the locks live, first usable wins. /run/lock is the FHS place for lock files (a
# tmpfs, 1777, on Debian; /var/lock links to it). Only when neither is writable (a locked-down
# box without root) do the locks go to a folder of this user's, which then only excludes this
# user's own runs: ``RunLock.shared`` is False and the run says so.
LOCK_DIRS = ("/run/lock/puppetops", "/var/lock/puppetops")
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")


def private_lock_dir() -> str:
    """The last resort: a folder per user under /tmp (not $TMPDIR: it must not depend on env)."""
    return f"/tmp/puppetops-locks-{os.getuid()}"


def lock_dir() -> tuple[str, bool]:
    """(the lock folder, whether it is shared by every user of this machine)."""
    for path in LOCK_DIRS:
        if usable_lock_dir(path, mode=0o1777):
            return path, True
    path = private_lock_dir()
    if not usable_lock_dir(path, mode=0o700):
        raise PuppetopsError(f"cannot create a lock folder: none of {', '.join(LOCK_DIRS)} or "
                             f"{path} is writable (and sticky or ours)")
    return path, False


def usable_lock_dir(path: str, mode: int) -> bool:
    """Create ``path`` (with exactly ``mode``: a shared folder is sticky and world-writable,
    like /tmp, so every user can add locks and none can remove another's) if it is missing;
    True if we can create lock files in it and nobody else can delete them: the folder is
    ours, or sticky when ``mode`` says it should be."""
    try:
        os.mkdir(path)
        os.chmod(path, mode)
    except FileExistsError:
        pass
    except OSError:
        return False
    try:
        info = os.lstat(path)
    except OSError:
        return False
    safe = info.st_uid == os.getuid() or bool(mode & info.st_mode & stat.S_ISVTX)
    return stat.S_ISDIR(info.st_mode) and safe and os.access(path, os.W_OK | os.X_OK)


def host_key(target: Target) -> str:
    """The identity of the host a target reaches: ``transport:address:port``.

    The address is the resolved one (``getaddrinfo``; the lowest if a name has several), so
    every name of a host gives the same key; a name that does not resolve is used as written
    (lower case) — that run will fail to connect anyway. The local transport is this machine.
    """
    if target.transport == "local":
        return "local"
    name = (target.host or target.name).lower().rstrip(".")
    port = target_setting(target, "port")
    try:
        addresses = {info[4][0] for info in socket.getaddrinfo(name, port, type=socket.SOCK_STREAM)}
    except (OSError, UnicodeError):
        addresses = set()
    address = min(addresses) if addresses else name
    return f"{target.transport}:{address}:{port}"


def lock_file_name(key: str) -> str:
    """A file name for a host key: readable, and distinct for distinct keys."""
    safe = _UNSAFE.sub("_", key.replace(":", "_"))
    if safe != key.replace(":", "_"):
        safe += "-" + hashlib.sha256(key.encode()).hexdigest()[:8]
    return safe + ".lock"


def holder_info(**extra: Any) -> dict[str, Any]:
    """Who we are, as written for a refused run to read: pid, user, controller host, command,
    since when. The command is masked like every output (a secret on the command line)."""
    return {"pid": os.getpid(), "user": getpass.getuser(), "host": socket.gethostname(),
            "command": secrets.mask(" ".join(sys.argv))[:300],
            "since": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), **extra}


def describe_holder(holder: dict[str, Any] | None) -> str:
    """``pid 123 (root@ctl, since 2026-...): puppetops deploy-code`` or 'an unknown run'."""
    if not holder:
        return "another run (it has not written who it is yet)"
    who = f"{holder.get('user', '?')}@{holder.get('host', '?')}"
    text = f"pid {holder.get('pid', '?')} ({who}, since {holder.get('since', '?')}"
    text += f", run {holder['run']})" if holder.get("run") else ")"
    if holder.get("plan"):
        text += f", plan {holder['plan']}"
    return text + (f": {holder['command']}" if holder.get("command") else "")


def read_holder(text: str) -> dict[str, Any] | None:
    try:
        holder = json.loads(text)
    except ValueError:
        return None
    return holder if isinstance(holder, dict) else None


class RunLock:
    """The locks of a set of hosts, all taken or none (``acquire``), released together.

    ``RunLock(targets)`` locks the hosts of those targets; two targets on the same host (an
    alias, a second name) share one lock.
    """

    def __init__(self, targets: Iterable[Target], directory: str | None = None,
                 about: dict[str, Any] | None = None):
        self.about = about or {}  # more for the holder info (the run's id)
        keys: dict[str, str] = {}
        for target in targets:
            keys.setdefault(host_key(target), target.name)
        self.hosts = dict(sorted(keys.items()))  # host key → the first target naming it
        self.directory, self.shared = (directory, True) if directory else lock_dir()
        self._fds: list[int] = []

    def acquire(self) -> None:
        """Take every host's lock, in sorted order (so two runs never wait on each other in a
        cycle); if one is held, give back those taken and raise ``LockHeld``."""
        info = json.dumps(holder_info(**self.about)).encode()
        try:
            for key, name in self.hosts.items():
                fd = _open(os.path.join(self.directory, lock_file_name(key)))
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    holder = read_holder(os.pread(fd, 4096, 0).decode(errors="replace"))
                    os.close(fd)
                    raise LockHeld(
                        f"host {name} ({key}) is locked by another puppetops run: "
                        f"{describe_holder(holder)}; nothing was done, try again later",
                        holder=holder, resource=key) from None
                self._fds.append(fd)
                os.ftruncate(fd, 0)
                os.pwrite(fd, info, 0)
        except BaseException:
            self.release()
            raise

    def release(self) -> None:
        for fd in self._fds:
            os.close(fd)  # the flock goes with the last descriptor
        self._fds.clear()

    def __enter__(self) -> "RunLock":
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def _open(path: str) -> int:
    """Open (or create, 0666: any user may take the lock of a host) a lock file.

    Opened without ``O_CREAT`` when it exists: the kernel's ``protected_regular`` refuses
    ``O_CREAT`` on another user's file in a sticky folder; never through a symlink someone
    planted there.
    """
    flags = os.O_RDWR | os.O_NOFOLLOW | os.O_CLOEXEC
    while True:
        try:
            try:
                return os.open(path, flags)
            except FileNotFoundError:
                pass
            try:
                fd = os.open(path, flags | os.O_CREAT | os.O_EXCL, 0o666)
            except FileExistsError:
                continue
        except OSError as exc:
            raise PuppetopsError(f"cannot open lock file {path}: {exc.strerror}") from None
        os.fchmod(fd, 0o666)
        return fd
