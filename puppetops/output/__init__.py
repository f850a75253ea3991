"""Outputters: each output format is one class fed by the same events.

The executor and plans report events to an ``Output`` broadcaster; ``HumanOutput`` draws
progress and tables, ``JsonOutput`` prints one document at the end, ``LogFileOutput`` writes
JSON lines. New formats subscribe to the same events without touching the executor.
"""
from __future__ import annotations

from typing import Any, Sequence

from ..result import Result, ResultSet
from ..target import Target
from .base import is_closed_pipe
from .human import HumanOutput
from .json import JsonOutput
from .logfile import LogFileOutput
from .status import MermaidOutput

FORMATS = ("human", "json")
STATUS_FORMATS = (*FORMATS, "mermaid")
"""``status`` also draws its document as a Mermaid diagram; other commands have no picture."""


class Output:
    """Broadcasts every event to its outputters.

    An outputter whose stream is gone (stdout or stderr a closed pipe: ``puppetops ... |
    head``) misses the event; the run goes on, the other outputters (the log file) get it,
    and the run still ends with its own exit code, rerun file and lock release.
    """

    def __init__(self, *outputters: Any):
        self.outputters = list(outputters)

    def _emit(self, event: str, *args: Any) -> None:
        for o in self.outputters:
            try:
                getattr(o, event)(*args)
            except OSError as exc:
                if not is_closed_pipe(exc):
                    raise

    def plan_start(self, name: str, params: dict[str, Any]) -> None:
        self._emit("plan_start", name, params)

    def plan_end(self, name: str, ok: bool, duration: float, message: str) -> None:
        self._emit("plan_end", name, ok, duration, message)

    def step_start(self, step: str, targets: Sequence[Target]) -> None:
        self._emit("step_start", step, targets)

    def target_done(self, result: Result, done: int, total: int, failed: int) -> None:
        self._emit("target_done", result, done, total, failed)

    def step_end(self, results: ResultSet) -> None:
        self._emit("step_end", results)

    def heartbeat(self, step: str, target: str, elapsed: float, waiting_for: str) -> None:
        self._emit("heartbeat", step, target, elapsed, waiting_for)

    def message(self, text: str) -> None:
        self._emit("message", text)

    def status(self, document: dict[str, Any]) -> None:
        """A fleet status document (the ``status`` plan's), for each format to show."""
        self._emit("status", document)

    def run_end(self, summary: dict[str, Any]) -> None:
        self._emit("run_end", summary)


def make_output(fmt: str = "human", *, log_file: str | None = None, quiet: bool = False,
                stdout: Any = None, stderr: Any = None) -> Output:
    """The outputters for a CLI run: progress on stderr, results on stdout, optional log."""
    if fmt not in STATUS_FORMATS:
        raise ValueError(f"unknown format {fmt!r}; expected one of {', '.join(STATUS_FORMATS)}")
    outs: list[Any] = [HumanOutput(stderr=stderr, stdout=stdout, quiet=quiet, summary=fmt == "human")]
    if fmt == "json":
        outs.append(JsonOutput(stdout=stdout))
    if fmt == "mermaid":
        outs.append(MermaidOutput(stdout=stdout))
    if log_file:
        outs.append(LogFileOutput(log_file))
    return Output(*outs)


__all__ = ["FORMATS", "STATUS_FORMATS", "HumanOutput", "JsonOutput", "LogFileOutput",
           "MermaidOutput", "Output", "is_closed_pipe", "make_output"]
