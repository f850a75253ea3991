"""Local processes by PID, safely: pinned against PID reuse, whole trees stopped, on psutil.

One toolkit for the two places that stop processes they started on this machine: the lab
(`puppetops.lab`: host launchers, their sshd, anything left in a lab's network namespaces) and
the test sshd fleet (`puppetops.testing.sshd`: daemons and the connection children they fork).
Processes are only ever signalled by PID — never ``pkill``/``killall``: other people run the
same daemons on the same box — and a PID is re-checked right before each signal.

What psutil does not give is read from /proc here: network-namespace membership (the scan
``ip netns pids`` does, one pass for every host of a 200-host lab), the TCP listeners of
another process's network namespace (psutil reads our own namespace's) and other processes'
mounts.
"""
from __future__ import annotations

import os
import signal
from dataclasses import dataclass
from typing import Callable, Iterable

import psutil

from .polling import wait_while

__all__ = ["Proc", "alive", "children", "cmdline", "descendants", "descendant_levels",
           "is_mount_point", "mounts_matching", "netns_inode", "pids_in_netns", "proc", "rss_kib",
           "terminate", "terminate_tree"]


@dataclass(frozen=True)
class Proc:
    """A process pinned by its start time (psutil's ``create_time``), so a reused PID never
    matches: the pair can be recorded in a state file and trusted by a later process."""

    pid: int
    start: float

    def alive(self) -> bool:
        try:
            p = psutil.Process(self.pid)
            return p.create_time() == self.start and p.status() != psutil.STATUS_ZOMBIE
        except psutil.Error:
            return False

    def to_json(self) -> list[float]:
        return [self.pid, self.start]

    @classmethod
    def from_json(cls, data: list[float]) -> "Proc":
        return cls(int(data[0]), float(data[1]))


def proc(pid: int) -> Proc | None:
    """The live process ``pid`` pinned by start time, or None if it is gone or a zombie."""
    try:
        p = psutil.Process(pid)
        return None if p.status() == psutil.STATUS_ZOMBIE else Proc(pid, p.create_time())
    except psutil.Error:
        return None


def alive(pid: int) -> bool:
    """True if ``pid`` exists and is not a zombie."""
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def cmdline(pid: int) -> list[str]:
    """``pid``'s argv ([] if gone). psutil splits the title of a daemon that retitles itself
    (sshd, nginx) at its spaces: match on ``" ".join(...)``."""
    try:
        return psutil.Process(pid).cmdline()
    except psutil.Error:
        return []


def owner_uid(pid: int) -> int | None:
    """The user ``pid`` runs as (its effective uid); None if it is gone."""
    try:
        return psutil.Process(pid).uids().effective
    except psutil.Error:
        return None


def rss_kib(pid: int) -> int:
    """Resident memory of ``pid`` in KiB (0 if gone)."""
    try:
        return psutil.Process(pid).memory_info().rss // 1024
    except psutil.Error:
        return 0


def _children_by_parent(live_only: bool) -> dict[int, list[int]]:
    """Every process's children, from one pass over the process table."""
    found: dict[int, list[int]] = {}
    for p in psutil.process_iter(["ppid", "status"]):
        if p.info["ppid"] is None or (live_only and p.info["status"] == psutil.STATUS_ZOMBIE):
            continue
        found.setdefault(p.info["ppid"], []).append(p.pid)
    return found


def children(parents: Iterable[int]) -> dict[int, list[int]]:
    """Live children of each of ``parents``, from one pass over the process table."""
    by_parent = _children_by_parent(live_only=True)
    return {parent: by_parent.get(parent, []) for parent in parents}


def descendant_levels(pid: int) -> list[list[int]]:
    """Descendants of ``pid`` by depth (children, grandchildren, ...), zombies included
    (they still need their parent to reap them).

    sshd's per-connection children call ``setsid()``, so a process-group kill misses them and
    they would outlive a stopped listener while a client keeps its connection open.
    """
    by_parent = _children_by_parent(live_only=False)
    levels: list[list[int]] = []
    current = by_parent.get(pid, [])
    while current:
        levels.append(current)
        current = [child for parent in current for child in by_parent.get(parent, [])]
    return levels


def descendants(pid: int) -> list[int]:
    """All descendants of ``pid``, shallowest first."""
    return [p for level in descendant_levels(pid) for p in level]


def _signal(pids: Iterable[int], sig: int) -> None:
    for pid in pids:
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass


def _exists(pid: int) -> bool:
    """In the process table at all (a zombie counts until its parent reaps it)."""
    return psutil.pid_exists(pid)


def terminate_tree(pid: int) -> None:
    """SIGTERM the tree under ``pid`` (not ``pid`` itself) deepest level first, SIGKILL
    stragglers, waiting for each level to be reaped.

    Deepest first so every process dies while its parent still lives to reap it: killing a
    parent first would leave its children as zombies for PID 1 to reap, which in containers
    without a real init may never happen.
    """
    for level in reversed(descendant_levels(pid)):
        _signal(level, signal.SIGTERM)
        left = [p for p in wait_while(lambda: [p for p in level if _exists(p)], 3, 0.01) if alive(p)]
        _signal(left, signal.SIGKILL)
        wait_while(lambda: [p for p in left if _exists(p)], 2, 0.01)


def terminate(procs: Iterable[Proc], grace: float = 3.0) -> list[Proc]:
    """SIGTERM ``procs``, wait up to ``grace`` s, SIGKILL the rest; returns any still alive after."""
    pending = [p for p in procs if p.alive()]
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 2.0)):
        for p in pending:
            if p.alive():  # re-checked right before the signal: never signal a reused PID
                _signal([p.pid], sig)
        pending = wait_while(lambda: [p for p in pending if p.alive()], wait, 0.02)
        if not pending:
            break
    return [p for p in pending if p.alive()]


def netns_inode(name: str) -> int | None:
    """Inode of the named network namespace (``ip netns add NAME``), None if it does not exist."""
    try:
        return os.stat(f"/run/netns/{name}").st_ino
    except OSError:
        return None


def netns_of(pid: int) -> int | None:
    """The inode of ``pid``'s network namespace; None if it is gone (or a zombie, which has
    no namespaces left)."""
    try:
        link = os.readlink(f"/proc/{pid}/ns/net")  # net:[INODE]
    except OSError:
        return None
    return int(link[len("net:["):-1])


def pids_in_netns(inodes: Iterable[int]) -> dict[int, list[int]]:
    """Processes in each network namespace (by inode): the scan ``ip netns pids`` does."""
    found: dict[int, list[int]] = {ino: [] for ino in inodes}
    for pid in psutil.pids():
        inode = netns_of(pid)
        if inode in found:
            found[inode].append(pid)
    return found


def listening_in_netns_of(pid: int, port: int) -> bool:
    """Whether a TCP socket listens on ``port`` in ``pid``'s network namespace (no packet
    sent; False if ``pid`` is gone)."""
    try:
        with open(f"/proc/{pid}/net/tcp") as f:
            rows = f.read().splitlines()[1:]
    except OSError:
        return False
    want = f":{port:04X}"
    return any(r.split()[1].endswith(want) and r.split()[3] == "0A" for r in rows)


def is_mount_point(path: str) -> bool:
    """Whether ``path`` is a mount point in our mount namespace.

    ``os.path.ismount`` cannot tell: /run/netns is a bind mount of itself on the same filesystem.
    """
    with open("/proc/self/mountinfo") as f:
        return any(line.split()[4] == path for line in f)


def mounts_matching(predicate: Callable[[str, str], bool]) -> list[str]:
    """``pid: mountinfo line`` for every mount in any process's mount namespace that matches.

    Lab mounts live only in the hosts' private mount namespaces, so they can only leak through a
    surviving process: scanning every /proc/*/mountinfo is the proof that none survived.
    """
    hits = []
    for pid in psutil.pids():
        try:
            with open(f"/proc/{pid}/mountinfo") as f:
                lines = f.read().splitlines()
        except OSError:
            continue
        for line in lines:
            fields = line.split(" - ", 1)
            mount_point = fields[0].split()[4]
            source = fields[1].split()[1] if len(fields) > 1 else ""
            if predicate(mount_point, source):
                hits.append(f"{pid}: {line}")
    return hits
