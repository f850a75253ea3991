"""The status page's data: the fleet's status, gathered by ONE background thread.

HTTP requests never reach a host: they read the last gather (``snapshot``) and say that the
page is being looked at (``wanted``). The thread gathers — the ``status`` plan, what
``puppetops status`` runs — at most once per ``refresh`` seconds and only while someone
looks: however many browser tabs poll, the hosts see one SSH round per interval, and none
when nobody does. A failed gather keeps the last good status, marked stale, beside the
error and its time.
"""
from __future__ import annotations

import threading
import time
from typing import Any, Callable

from ..errors import PuppetopsError
from ..inventory import Inventory
from ..output import Output
from ..output.status import ca_summary, detail, fleet_verdict, mermaid
from ..run import Run
from .log import JsonLog, utc_iso

Gather = Callable[[], dict[str, Any]]  # → the status document (FleetStatus.document)
GATHER_TIMEOUT = 60.0  # the run's overall limit: a host not read by then is shown failed


def gather_status(inventory: str) -> dict[str, Any]:
    """The status document of ``inventory``'s hosts: the ``status`` plan in a run of its own
    that takes no lock (it changes nothing: it answers while a deploy runs, as the CLI's).
    The inventory is read again each time, so a compiler added to it shows up."""
    from puppetops.plans.status import status
    run = Run(Inventory.load(inventory), output=Output(), lock=False, timeout=GATHER_TIMEOUT)
    try:
        return status(run).document
    finally:
        run.close()


def page_view(document: dict[str, Any]) -> dict[str, Any]:
    """What the page shows beside the document, worded by the same functions as the
    ``status`` table (``puppetops.output.status``): the page only lays it out."""
    return {"verdict": fleet_verdict(document),
            "details": {name: detail(host) for name, host in document["hosts"].items()},
            "ca": ca_summary(document["ca"]) if document.get("ca") else []}


class FleetWatch:
    """The last status gathered, and the thread that gathers it while the page is open."""

    def __init__(self, gather: Gather, refresh: float, log: JsonLog,
                 clock: Callable[[], float] = time.time):
        self.gather, self.refresh, self.log, self.clock = gather, refresh, log, clock
        self._wanted = threading.Event()
        self._stopping = threading.Event()
        self._lock = threading.Lock()  # the fields below
        self._good: dict[str, Any] | None = None  # document, mermaid, view of the last success
        self._good_at: float | None = None
        self._took: float | None = None
        self._error: str | None = None  # of the last gather, if it failed
        self._error_at: float | None = None
        self._thread = threading.Thread(target=self._loop, name="status-gather", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def close(self, wait: float = 5.0) -> None:
        """Stop gathering; a gather under way is left to end on its own (daemon thread)."""
        self._stopping.set()
        self._wanted.set()
        if self._thread.is_alive():
            self._thread.join(wait)

    def wanted(self) -> None:
        """Someone looks at the page: gather again once the interval is over."""
        self._wanted.set()

    def gather_once(self) -> None:
        """One gather, its outcome recorded (the thread's work; tests call it directly)."""
        started = self.clock()
        try:
            document = self.gather()
            good = {"status": document, "mermaid": mermaid(document), "view": page_view(document)}
        except Exception as exc:  # whatever went wrong: shown on the page, logged, retried
            message = (str(exc) if isinstance(exc, PuppetopsError)
                       else f"{type(exc).__name__}: {exc}")[:1000]
            with self._lock:
                self._error, self._error_at = message, self.clock()
            self.log.write(event="status", ok=False, error=message)
            return
        with self._lock:
            news = self._error is not None or self._good is None \
                or self._good["status"].get("healthy") != document.get("healthy")
            self._good, self._good_at = good, self.clock()
            self._took = round(self._good_at - started, 2)
            self._error = self._error_at = None
        if news:  # a line when the verdict changes, not one per interval
            self.log.write(event="status", ok=True, healthy=document.get("healthy"),
                           took=self._took)

    def snapshot(self) -> dict[str, Any]:
        """What ``GET /status.json`` answers (before any gather: ``status`` None)."""
        with self._lock:
            good, error = self._good or {"status": None, "mermaid": None, "view": None}, \
                self._error
            return {**good, "refresh": self.refresh, "gathered_at": utc_iso(self._good_at, "seconds"),
                    "took": self._took, "error": error, "error_at": utc_iso(self._error_at, "seconds"),
                    "stale": error is not None and self._good is not None}

    def _loop(self) -> None:
        while not self._stopping.is_set():
            self._wanted.wait()
            if self._stopping.is_set():
                return
            self._wanted.clear()
            self.gather_once()
            self._stopping.wait(self.refresh)
