"""Secret values (sudo passwords) registered here are masked in every output, result and log."""
from __future__ import annotations

import os
import threading
from typing import Any

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
