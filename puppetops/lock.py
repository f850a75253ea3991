"""The run lock: one puppetops run per inventory at a time, so overlapping cron runs don't race."""
from __future__ import annotations

import fcntl
import hashlib
import os
import tempfile

from .errors import LockHeld


def lock_path_for(inventory_path: str | None) -> str:
    """A lock file per inventory (by absolute path), in a per-user runtime folder."""
    key = os.path.abspath(inventory_path) if inventory_path else "<no inventory>"
    digest = hashlib.sha256(key.encode()).hexdigest()[:16]
    base = os.environ.get("XDG_RUNTIME_DIR") or tempfile.gettempdir()
    return os.path.join(base, f"puppetops-{os.getuid()}-{digest}.lock")


class RunLock:
    """An exclusive, non-blocking ``flock``; released by the kernel even if we crash."""

    def __init__(self, inventory_path: str | None, path: str | None = None):
        self.inventory_path = inventory_path
        self.path = path or lock_path_for(inventory_path)
        self._fd: int | None = None

    def acquire(self) -> None:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 64).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise LockHeld(f"another puppetops run (pid {holder}) holds the lock for inventory "
                           f"{self.inventory_path or '-'} ({self.path}); exiting without doing "
                           "anything") from None
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            os.ftruncate(self._fd, 0)
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> "RunLock":
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()
