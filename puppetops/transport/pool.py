"""One connection pool per run: each target's connection is made once and reused by every step."""
from __future__ import annotations

import os
import threading
from typing import Iterable

from ..errors import ConfigError
from ..inventory.schema import TRANSPORTS
from ..target import Target
from .base import Connection
from .local import LocalConnection
from .credentials import SshCredentials
from .ssh import SshConnection


def default_handshake_slots() -> int:
    """How many SSH handshakes may run at once.

    A handshake is CPU-bound (key exchange and signature on both ends), so more of them in
    flight than a few per core only adds contention; established connections are not limited.
    On 2 cores, 4 to 16 slots connect 200 loopback hosts equally fast and more cost client CPU
    (docs/benchmarks.md, "Handshake slots"): 16 is the most handshakes in flight (headroom for
    network round trips) before that cost.
    """
    return max(4, 8 * (os.cpu_count() or 2))


class ConnectionPool:
    def __init__(self, handshake_slots: int | None = None):
        self.credentials = SshCredentials()
        self._slots = threading.BoundedSemaphore(handshake_slots or default_handshake_slots())
        self._connections: dict[str, Connection] = {}
        self._checked: set[str] = set()
        self._lock = threading.Lock()

    def check(self, targets: Iterable[Target]) -> None:
        """Refuse targets whose transport settings cannot work, before anything runs on them.

        Raises ``ConfigError`` (exit 2) with one line: the first problem found and every
        target it concerns (200 targets sharing one missing key file are one problem). Each
        target is checked once per run; what the checks load (keys, known_hosts files) is
        what its connection then uses.
        """
        problems: dict[str, list[str]] = {}
        for target in {target.name: target for target in targets}.values():
            if target.name in self._checked:
                continue
            try:
                self.get(target).check()
            except ConfigError as exc:
                problems.setdefault(exc.reason, []).append(target.name)
            else:
                self._checked.add(target.name)
        if problems:
            reason, names = next(iter(problems.items()))
            raise ConfigError(f"{_listing(names)}: {reason}")

    def get(self, target: Target) -> Connection:
        """The target's connection object (connecting happens lazily on first command)."""
        with self._lock:
            conn = self._connections.get(target.name)
            if conn is None:
                conn = self._make(target)
                self._connections[target.name] = conn
            return conn

    def dedicated(self, target: Target) -> Connection:
        """A connection of the target's own, outside the pool: neither shared nor reused, and
        closed by the caller. For a command whose life is tied to its connection's."""
        return self._make(target)

    def _make(self, target: Target) -> Connection:
        if target.transport == "local":
            return LocalConnection(target)
        if target.transport == "ssh":
            return SshConnection(target, self.credentials, self._slots)
        raise ConfigError(f"transport {target.transport} is not supported by puppetops "
                          f"({' and '.join(TRANSPORTS)} are); remove it from --targets")

    def handshakes(self) -> dict[str, int]:
        """SSH handshakes made per target so far (1 per target means full reuse)."""
        return {name: c.handshakes for name, c in self._connections.items()
                if isinstance(c, SshConnection)}

    def close(self) -> None:
        with self._lock:
            for conn in self._connections.values():
                conn.close()
            self._connections.clear()

    def __enter__(self) -> "ConnectionPool":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _listing(names: list[str], shown: int = 3) -> str:
    """``a, b, c and 7 more``: which targets a problem concerns, in one short line."""
    if len(names) <= shown + 1:
        return ", ".join(names)
    return f"{', '.join(names[:shown])} and {len(names) - shown} more"
