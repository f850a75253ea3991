"""Secret values (sudo passwords) registered here are masked in every output, result and log."""
from __future__ import annotations

import os
import stat
import threading
from typing import Any

from .errors import UsageError

MASK = "********"
_secrets: set[str] = set()
_lock = threading.Lock()


def register(value: str) -> str:
    """Remember ``value`` as secret and return it, so callers can write ``pw = register(x)``."""
    if value:
        with _lock:
            _secrets.add(value)
    return value


def mask(text: str) -> str:
    """``text`` with every registered secret replaced by a mask."""
    if not text or not _secrets:
        return text
    for secret in sorted(_secrets, key=len, reverse=True):
        text = text.replace(secret, MASK)
    return text


def resolve(reference: Any, *, what: str) -> str | None:
    """Resolve a secret reference from the inventory (``{_plugin: env_var, var: NAME}``).

    Secrets are never stored in the inventory file itself, only where to find them.
    """
    if reference is None:
        return None
    var = reference.get("var") if isinstance(reference, dict) else None
    if not var:
        raise ValueError(f"{what}: expected {{_plugin: env_var, var: NAME}}")
    if var not in os.environ:
        raise KeyError(f"{what} is read from the environment variable {var}, which is not "
                       "set; export it before the run")
    return register(os.environ[var])


def read_file(path: str, what: str) -> str:
    """The secret in file ``path`` (its surrounding whitespace stripped), registered. The file
    must be a regular, non-empty UTF-8 file that neither group nor others can read or write
    (like ssh's private keys); ``UsageError`` naming ``what`` and ``path`` otherwise."""
    try:
        info = os.stat(path)
        if not stat.S_ISREG(info.st_mode):
            raise UsageError(f"{what} {path}: not a regular file")
        if info.st_mode & 0o077:
            raise UsageError(f"{what} {path}: readable or writable by group or others "
                             f"(mode {stat.S_IMODE(info.st_mode):o}); run chmod 600 on it")
        with open(path, encoding="utf-8") as handle:
            secret = handle.read().strip()
    except OSError as exc:
        raise UsageError(f"{what} {path}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise UsageError(f"{what} {path}: not UTF-8 text") from None
    if not secret:
        raise UsageError(f"{what} {path}: empty")
    return register(secret)
