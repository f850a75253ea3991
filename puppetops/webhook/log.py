"""The webhook's log: one JSON object per line, per request and per deploy.

Only fields chosen by the caller are written — never request headers or bodies — so the
signature and token a forge sends cannot end up in it; every line also goes through
``secrets.mask`` in case a message quotes the secret.

Lines are written by a thread of their own, all that came in the last ``FLUSH_EVERY`` seconds
in one write: a request thread only appends to a list. A write (a system call, slow when the
disk is busy) per request was the largest single cost of a request under a burst. A crash can
lose the last fraction of a second of lines; ``close`` and ``flush`` write everything.
"""
from __future__ import annotations

import json
import os
import sys
import threading
import time
from datetime import datetime, timezone
from typing import Any, TextIO

from .. import secrets

FLUSH_EVERY = 0.1  # seconds


def utc_iso(stamp: float | None, timespec: str = "milliseconds") -> str | None:
    """A Unix time as the webhook writes times (its log, its deploy records, its status
    page): ISO 8601 in UTC to ``timespec`` (``milliseconds`` for events, ``seconds`` for the
    page's gathers, which are seconds apart); None stays None."""
    return None if stamp is None else \
        datetime.fromtimestamp(stamp, timezone.utc).isoformat(timespec=timespec)


class JsonLog:
    def __init__(self, path: str | None = None):
        """Append to ``path`` (created readable by the owner only), or write to stderr."""
        self._own = path is not None
        self._stream: TextIO = (os.fdopen(os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT,
                                                  0o600), "a", encoding="utf-8")
                                if path else sys.stderr)
        self._lines: list[str] = []
        self._lock = threading.Lock()      # _lines
        self._writing = threading.Lock()   # the stream
        self._waiting = threading.Event()  # lines are waiting to be written
        self._closed = False
        self._writer = threading.Thread(target=self._write_lines, name="webhook-log",
                                        daemon=True)
        self._writer.start()

    def write(self, **fields: Any) -> None:
        line = secrets.mask(json.dumps({"time": utc_iso(time.time()), **fields}, default=str))
        with self._lock:
            self._lines.append(line)
        self._waiting.set()

    def flush(self) -> None:
        """Every line written so far is in the file now."""
        with self._writing:
            with self._lock:
                lines, self._lines = self._lines, []
            if lines:
                self._stream.write("\n".join(lines) + "\n")
                self._stream.flush()

    def close(self) -> None:
        self._closed = True
        self._waiting.set()
        self._writer.join()
        self.flush()
        if self._own:
            self._stream.close()

    def _write_lines(self) -> None:
        while not self._closed:
            self._waiting.wait()
            self._waiting.clear()
            self.flush()
            if not self._closed:
                time.sleep(FLUSH_EVERY)  # gather what comes meanwhile
