"""Processes of the lab, seen from the controller through /proc (no SSH, no pkill).

A lab process is identified either by a recorded ``(pid, start time)`` pair — the start time
guards against the PID having been reused by an unrelated process since it was recorded — or by
living in one of the lab's network namespaces, which is what ``ip netns pids`` reports: we do the
same /proc scan in Python so one pass serves every host of a 200-host lab.
"""
from __future__ import annotations

import os
import re
import signal
import time
from dataclasses import dataclass
from typing import Callable, Iterable


@dataclass(frozen=True)
class Proc:
    """A process pinned by its start time (clock ticks since boot), so a reused PID never matches."""

    pid: int
    start: int

    def alive(self) -> bool:
        stat = _stat(self.pid)
        return stat is not None and stat[2] == self.start and stat[0] != "Z"

    def to_json(self) -> list[int]:
        return [self.pid, self.start]

    @classmethod
    def from_json(cls, data: list[int]) -> "Proc":
        return cls(int(data[0]), int(data[1]))


def _stat(pid: int) -> tuple[str, int, int] | None:
    """(state, ppid, starttime) of ``pid`` or None if it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            text = f.read()
    except OSError:
        return None
    rest = text[text.rindex(")") + 2:].split()  # comm may contain spaces and parentheses
    return rest[0], int(rest[1]), int(rest[19])


def proc(pid: int) -> Proc | None:
    """The live process ``pid`` pinned by start time, or None if it is gone or a zombie."""
    stat = _stat(pid)
    return None if stat is None or stat[0] == "Z" else Proc(pid, stat[2])


def _all_pids() -> list[int]:
    return [int(name) for name in os.listdir("/proc") if name.isdigit()]


def children(parents: Iterable[int]) -> dict[int, list[int]]:
    """Live children of each of ``parents``, from one /proc scan."""
    wanted = set(parents)
    found: dict[int, list[int]] = {p: [] for p in wanted}
    for pid in _all_pids():
        stat = _stat(pid)
        if stat and stat[1] in wanted and stat[0] != "Z":
            found[stat[1]].append(pid)
    return found


def netns_inode(name: str) -> int | None:
    """Inode of the named network namespace (``ip netns add NAME``), None if it does not exist."""
    try:
        return os.stat(f"/run/netns/{name}").st_ino
    except OSError:
        return None


def pids_in_netns(inodes: Iterable[int]) -> dict[int, list[int]]:
    """Processes in each network namespace (by inode): the scan ``ip netns pids`` does."""
    wanted = {f"net:[{ino}]": ino for ino in inodes}
    found: dict[int, list[int]] = {ino: [] for ino in wanted.values()}
    for pid in _all_pids():
        try:
            link = os.readlink(f"/proc/{pid}/ns/net")
        except OSError:  # gone, or a zombie (no namespaces left)
            continue
        if link in wanted:
            found[wanted[link]].append(pid)
    return found


def cmdline(pid: int) -> list[str]:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            raw = f.read()
    except OSError:
        return []
    return [a.decode(errors="replace") for a in raw.split(b"\0") if a]


def rss_kib(pid: int) -> int:
    """Resident memory of ``pid`` in KiB (0 if gone or a kernel thread)."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


_AGENT = re.compile(r"(?:^|/)puppet agent\b")


def service_of(argv: list[str]) -> str | None:
    """Which Puppet-stack service a command line belongs to, if any.

    The JVMs are told apart by their jar/config paths; nginx and a running puppet agent rewrite
    their argv[0] ("nginx: master process ...", "puppet agent: applying configuration").
    """
    if not argv:
        return None
    prog = os.path.basename(argv[0].split()[0]).rstrip(":")
    joined = " ".join(argv)
    if prog == "java":
        if "puppetdb" in joined:
            return "puppetdb"
        if "puppetserver" in joined:
            return "puppetserver"
        return None
    if prog in ("haproxy", "nginx"):
        return prog
    if _AGENT.search(joined):
        return "puppet agent"
    return None


def terminate(procs: Iterable[Proc], grace: float = 3.0) -> list[Proc]:
    """SIGTERM ``procs``, wait up to ``grace`` s, SIGKILL the rest; returns any still alive after."""
    pending = [p for p in procs if p.alive()]
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 2.0)):
        for p in pending:
            if p.alive():  # re-checked right before the signal: never signal a reused PID
                try:
                    os.kill(p.pid, sig)
                except ProcessLookupError:
                    pass
        deadline = time.monotonic() + wait
        while pending and time.monotonic() < deadline:
            pending = [p for p in pending if p.alive()]
            if pending:
                time.sleep(0.02)
        if not pending:
            break
    return [p for p in pending if p.alive()]


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
    for pid in _all_pids():
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
