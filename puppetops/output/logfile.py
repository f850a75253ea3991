"""Log file output: one JSON object per line for every plan, step and target event."""
from __future__ import annotations

import json
import threading
import time
from typing import Any

from .. import secrets
from .base import Outputter


class LogFileOutput(Outputter):
    def __init__(self, path: str):
        self.path = path
        self._file = open(path, "a", encoding="utf-8")
        self._lock = threading.Lock()

    def _write(self, event: str, **fields: Any) -> None:
        line = json.dumps({"time": round(time.time(), 3), "event": event, **fields}, default=str)
        with self._lock:
            if self._file.closed:  # after run_end (e.g. a late signal's acknowledgement)
                return
            self._file.write(secrets.mask(line) + "\n")
            self._file.flush()

    def plan_start(self, name, params):
        self._write("plan_start", plan=name, params=params)

    def plan_end(self, name, ok, duration, message):
        self._write("plan_end", plan=name, ok=ok, duration=round(duration, 3), message=message)

    def step_start(self, step, targets):
        self._write("step_start", step=step, targets=[t.name for t in targets])

    def target_done(self, result, done, total, failed):
        self._write("target", **result.to_dict())

    def step_end(self, results):
        self._write("step_end", step=results.name, counts=results.by_status(), ok=results.ok)

    def heartbeat(self, step, target, elapsed, waiting_for):
        self._write("heartbeat", step=step, target=target, elapsed=round(elapsed, 1),
                    waiting_for=waiting_for)

    def message(self, text):
        self._write("message", text=text)

    def status(self, document):
        self._write("status", healthy=document["healthy"], findings=document["findings"])

    def run_end(self, summary):
        self._write("run_end", **summary)
        with self._lock:
            self._file.close()
