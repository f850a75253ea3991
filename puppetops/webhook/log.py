"""The webhook's log: one JSON object per line, per request and per deploy.

Only fields chosen by the caller are written — never request headers or bodies — so the
signature and token a forge sends cannot end up in it; every line also goes through
``secrets.mask`` in case a message quotes the secret.
"""
from __future__ import annotations

import json
import os
import sys
import threading
from datetime import datetime, timezone
from typing import Any, TextIO

from .. import secrets


class JsonLog:
    def __init__(self, path: str | None = None):
        """Append to ``path`` (created readable by the owner only), or write to stderr."""
        self._own = path is not None
        self._stream: TextIO = (os.fdopen(os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT,
                                                  0o600), "a", encoding="utf-8")
                                if path else sys.stderr)
        self._lock = threading.Lock()

    def write(self, **fields: Any) -> None:
        stamp = datetime.now(timezone.utc).isoformat(timespec="milliseconds")
        line = secrets.mask(json.dumps({"time": stamp, **fields}, default=str))
        with self._lock:
            self._stream.write(line + "\n")
            self._stream.flush()

    def close(self) -> None:
        if self._own:
            self._stream.close()
