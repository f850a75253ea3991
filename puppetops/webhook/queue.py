"""The deploy queue: per environment one deploy at a time, bursts coalesced, environments apart.

A forge retries, and people push several times in a row; r10k must never run twice at once on
one environment. So per environment there is at most one deploy running and at most one
waiting. A push that finds a deploy waiting joins it — the waiting deploy now takes the newest
head — and returns its id: twenty pushes during one deploy make one follow-up deploy, not
twenty. Different environments deploy in parallel, up to ``workers`` at once.
"""
from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from .. import secrets
from .deploy import DeployFunction
from .log import JsonLog
from .store import FAILED, OK, DeployStore

STOPPED = "the webhook stopped before this deploy started"


class QueueClosed(RuntimeError):
    """The server is shutting down and takes no new deploys (a 503)."""


@dataclass(frozen=True)
class Queued:
    id: int
    coalesced: bool  # joined a deploy that was already waiting


class DeployQueue:
    def __init__(self, store: DeployStore, deploy: DeployFunction, log: JsonLog,
                 workers: int = 2):
        self.store, self.deploy, self.log = store, deploy, log
        self._pool = ThreadPoolExecutor(workers, thread_name_prefix="deploy")
        self._lock = threading.Lock()
        self._waiting: dict[str, int] = {}  # environment → the deploy id that has not started
        self._busy: set[str] = set()        # environments with a deploy handed to the pool
        self._running: set[str] = set()     # ... whose deploy has started
        self._closed = False

    def submit(self, environment: str, commit: str, provider: str) -> Queued:
        """Queue a deploy of ``commit`` to ``environment``, or fold it into the waiting one."""
        with self._lock:
            if self._closed:
                raise QueueClosed("the webhook is shutting down")
            waiting = self._waiting.get(environment)
            if waiting is not None:
                self.store.coalesce(waiting, commit)
                return Queued(waiting, True)
            deploy_id = self.store.create(environment, commit, provider)
            self._waiting[environment] = deploy_id
            if environment not in self._busy:
                self._hand_over(environment)
            return Queued(deploy_id, False)

    def active(self) -> dict[str, int]:
        """{"running": n, "waiting": n} right now."""
        with self._lock:
            return {"running": len(self._running), "waiting": len(self._waiting)}

    def close(self) -> None:
        """Take no more deploys, let the running ones finish (a half-done r10k run is worse
        than a late exit), and mark the waiting ones failed."""
        with self._lock:
            self._closed = True
        self._pool.shutdown(wait=True, cancel_futures=True)
        self.store.fail_queued(STOPPED)

    # -- workers ---------------------------------------------------------------------------
    def _hand_over(self, environment: str) -> None:  # with self._lock held
        self._busy.add(environment)
        self._pool.submit(self._work, environment)

    def _work(self, environment: str) -> None:
        with self._lock:
            deploy_id = self._waiting.pop(environment)
            self._running.add(environment)
            commit = self.store.start(deploy_id)
        started = time.monotonic()
        try:
            outcome = self.deploy(environment, commit)
            ok, result, error = outcome.ok, outcome.result, outcome.error
        except Exception as exc:  # a bug or fault in one deploy must not stop the queue
            ok, result, error = False, None, f"{type(exc).__name__}: {exc}"
        error = secrets.mask(error)
        self.store.finish(deploy_id, ok, result, error)
        self.log.write(event="deploy", id=deploy_id, environment=environment, commit=commit,
                       status=OK if ok else FAILED, seconds=round(time.monotonic() - started, 3),
                       error=error)
        with self._lock:
            self._busy.discard(environment)
            self._running.discard(environment)
            if environment in self._waiting and not self._closed:
                self._hand_over(environment)
