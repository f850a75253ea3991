"""JSON output: exactly one JSON document on stdout at the end of the run, nothing else there."""
from __future__ import annotations

import json
import sys
from typing import Any

from ..result import ResultSet
from .base import Outputter


class JsonOutput(Outputter):
    def __init__(self, *, stdout: Any = None):
        self.out = stdout or sys.stdout
        self.steps: list[ResultSet] = []
        self.plans: list[dict[str, Any]] = []
        self.messages: list[str] = []  # what plans said besides results (e.g. warnings)
        self.status_document: dict[str, Any] | None = None

    def status(self, document: dict[str, Any]) -> None:
        self.status_document = document

    def plan_end(self, name, ok, duration, message):
        self.plans.append({"name": name, "ok": ok, "duration": round(duration, 3),
                           "message": message})

    def step_end(self, results: ResultSet) -> None:
        self.steps.append(results)

    def message(self, text: str) -> None:
        self.messages.append(text)

    def run_end(self, summary: dict[str, Any]) -> None:
        document = dict(summary, plans=self.plans, messages=self.messages,
                        steps=[rs.to_dict() for rs in self.steps],
                        **({"status": self.status_document} if self.status_document else {}))
        json.dump(document, self.out, indent=2, default=str)
        self.out.write("\n")
        self.out.flush()
