"""The deploy queue: per environment one job at a time, bursts coalesced, environments apart.

A job deploys an environment (a push) or removes it (its branch was deleted). A forge
retries, and people push several times in a row; r10k must never run twice at once on one
environment, nor a removal beside a deploy. So per environment there is at most one job
running and at most one waiting. An event that finds a job waiting joins it and returns its
id: the waiting job now does what the latest event asks — deploy the newest head, or remove —
so twenty pushes during one deploy make one follow-up deploy, and a push after a delete
redeploys. Different environments run in parallel, up to ``workers`` at once.

A removal refused because the branch exists (a delete replayed or overtaken by a newer push)
is followed by a deploy of the branch's head, unless an event already waits: the environment
ends as the control repo has it either way.
"""
from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from .. import secrets
from .deploy import DeployFunction, Outcome, RemoveFunction
from .log import JsonLog
from .store import DEPLOY, FAILED, OK, REMOVE, DeployStore

STOPPED = "the webhook stopped before this deploy started"


class QueueClosed(RuntimeError):
    """The server is shutting down and takes no new deploys (a 503)."""


@dataclass(frozen=True)
class Queued:
    id: int
    coalesced: bool  # joined a job that was already waiting


class DeployQueue:
    def __init__(self, store: DeployStore, deploy: DeployFunction, remove: RemoveFunction,
                 log: JsonLog, workers: int = 2):
        self.store, self.deploy, self.remove, self.log = store, deploy, remove, log
        self._pool = ThreadPoolExecutor(workers, thread_name_prefix="deploy")
        self._lock = threading.Lock()
        self._waiting: dict[str, int] = {}  # environment → the job id that has not started
        self._busy: set[str] = set()        # environments with a job handed to the pool
        self._running: set[str] = set()     # ... whose job has started
        self._closed = False

    def submit(self, environment: str, commit: str, provider: str,
               action: str = DEPLOY) -> Queued:
        """Queue a job (deploy ``commit``, or remove: ``action``) for ``environment``, or fold
        it into the waiting one, which then does this latest event's action."""
        with self._lock:
            if self._closed:
                raise QueueClosed("the webhook is shutting down")
            waiting = self._waiting.get(environment)
            if waiting is not None:
                self.store.coalesce(waiting, commit, action)
                return Queued(waiting, True)
            return Queued(self._queue(environment, commit, provider, action), False)

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
    def _queue(self, environment: str, commit: str, provider: str,
               action: str) -> int:  # with self._lock held
        job_id = self.store.create(environment, commit, provider, action)
        self._waiting[environment] = job_id
        if environment not in self._busy:
            self._hand_over(environment)
        return job_id

    def _hand_over(self, environment: str) -> None:  # with self._lock held
        self._busy.add(environment)
        self._pool.submit(self._work, environment)

    def _work(self, environment: str) -> None:
        with self._lock:
            job_id = self._waiting.pop(environment)
            self._running.add(environment)
            action, commit = self.store.start(job_id)
        started = time.monotonic()
        try:
            outcome = (self.remove(environment) if action == REMOVE
                       else self.deploy(environment, commit))
        except Exception as exc:  # a bug or fault in one job must not stop the queue
            outcome = Outcome(False, None, f"{type(exc).__name__}: {exc}")
        error = secrets.mask(outcome.error)
        self.store.finish(job_id, outcome.ok, outcome.result, error)
        self.log.write(event="deploy", id=job_id, action=action, environment=environment,
                       commit=commit, status=OK if outcome.ok else FAILED,
                       seconds=round(time.monotonic() - started, 3), error=error)
        with self._lock:
            self._busy.discard(environment)
            self._running.discard(environment)
            if outcome.redeploy and environment not in self._waiting and not self._closed:
                provider = (self.store.get(job_id) or {}).get("provider", "")
                self._queue(environment, outcome.redeploy, provider, DEPLOY)
            elif environment in self._waiting and not self._closed:
                self._hand_over(environment)
