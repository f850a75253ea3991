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

Stopping (``close``) takes no new job and leaves the waiting ones queued in the store — the
next start runs them (``resume``) — while a running job may finish within a grace period;
after it, the job is interrupted at its next safe point and recorded failed, saying so.
Stopping at once (``abandon``) records the running jobs failed before the process goes.
"""
from __future__ import annotations

import signal
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from .. import secrets
from .deploy import JobOutcome, Plans
from .log import JsonLog
from .store import DEPLOY, FAILED, OK, REMOVE, DeployStore

POLL = 0.2  # seconds between looks at "stop at once" while waiting for running jobs


class QueueClosed(RuntimeError):
    """The server is shutting down and takes no new deploys (a 503)."""


@dataclass(frozen=True)
class Queued:
    id: int
    coalesced: bool  # joined a job that was already waiting


class DeployQueue:
    def __init__(self, store: DeployStore, plans: Plans, log: JsonLog, workers: int = 2):
        self.store, self.plans, self.log = store, plans, log
        self._pool = ThreadPoolExecutor(workers, thread_name_prefix="deploy")
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)  # a running job ended
        self._waiting: dict[str, int] = {}  # environment → the job id that has not started
        self._asks: dict[str, str] = {}     # environment → its waiting job's action, if known
        self._busy: set[str] = set()        # environments with a job handed to the pool
        self._running: dict[str, int] = {}  # ... whose job has started: its id
        self._closed = False
        self._interrupted = ""  # why running jobs were interrupted, once they were

    def submit(self, environment: str, commit: str, provider: str,
               action: str = DEPLOY) -> Queued:
        """Queue a job (deploy ``commit``, or remove: ``action``) for ``environment``, or fold
        it into the waiting one, which then does this latest event's action."""
        with self._lock:
            if self._closed:
                raise QueueClosed("the webhook is shutting down")
            waiting = self._waiting.get(environment)
            if waiting is not None:  # on disk at once only if what the job does changes
                self.store.coalesce(waiting, commit, action,
                                    durable=self._asks.get(environment) != action)
                self._asks[environment] = action
                return Queued(waiting, True)
            job_id = self.store.create(environment, commit, provider, action)
            self._asks[environment] = action
            self._wait(environment, job_id)
            return Queued(job_id, False)

    def resume(self, jobs: list[tuple[int, str]]) -> None:
        """Run the jobs (id, environment), oldest first, that a stopped webhook left queued."""
        with self._lock:
            for job_id, environment in jobs:
                older = self._waiting.get(environment)
                if older is not None:  # one waiting job per environment: the newest event's
                    self.store.finish(older, False, None, f"superseded by job {job_id}, "
                                      "queued later for the same environment")
                self._wait(environment, job_id)

    def active(self) -> dict[str, int]:
        """{"running": n, "waiting": n} right now."""
        with self._lock:
            return {"running": len(self._running), "waiting": len(self._waiting)}

    def close(self, grace: float, at_once: threading.Event) -> bool:
        """Take no more jobs and start none (the waiting ones stay queued in the store for the
        next start); let the running ones finish for up to ``grace`` seconds, then interrupt
        them (``Plans.interrupt``: they stop at a safe point) and wait for that. True once
        nothing runs; False as soon as ``at_once`` is set while something still runs."""
        with self._lock:
            self._closed = True
        self._pool.shutdown(wait=False, cancel_futures=True)
        if self._idle(time.monotonic() + grace, at_once):
            return True
        if at_once.is_set():
            return False
        with self._lock:
            running = dict(self._running)
            self._interrupted = (f"interrupted: the webhook was stopped and this job was still "
                                 f"running when its stop grace ({grace:g} s) ended")
        self.log.write(event="interrupt", ids=sorted(running.values()), grace=grace)
        self.plans.interrupt(signal.SIGTERM)
        return self._idle(None, at_once)

    def abandon(self, reason: str) -> None:
        """Stopping at once: record the running jobs failed with ``reason`` (their threads go
        with the process)."""
        with self._lock:
            ids = sorted(self._running.values())
        for job_id in ids:
            self.store.finish(job_id, False, None, reason)
            self.log.write(event="deploy", id=job_id, status=FAILED, error=reason)

    # -- workers ---------------------------------------------------------------------------
    def _idle(self, deadline: float | None, at_once: threading.Event) -> bool:
        with self._lock:
            while self._running and not at_once.is_set():
                left = POLL if deadline is None else min(POLL, deadline - time.monotonic())
                if left <= 0:
                    break
                self._changed.wait(left)
            return not self._running

    def _wait(self, environment: str, job_id: int) -> None:  # with self._lock held
        self._waiting[environment] = job_id
        if environment not in self._busy:
            self._busy.add(environment)
            self._pool.submit(self._work, environment)

    def _work(self, environment: str) -> None:
        with self._lock:
            if self._closed:  # stopping: the job stays queued for the next start
                self._busy.discard(environment)
                return
            job_id = self._waiting.pop(environment)
            self._asks.pop(environment, None)
            self._running[environment] = job_id
            action, commit = self.store.start(job_id)
        started = time.monotonic()
        try:
            outcome = (self.plans.remove(environment) if action == REMOVE
                       else self.plans.deploy(environment, commit))
        except Exception as exc:  # a bug or fault in one job must not stop the queue
            outcome = JobOutcome(False, None, f"{type(exc).__name__}: {exc}")
        error = secrets.mask(outcome.error)
        with self._lock:
            if self._interrupted and not outcome.ok:
                error = f"{self._interrupted}: {error}"
        self.store.finish(job_id, outcome.ok, outcome.result, error)
        self.log.write(event="deploy", id=job_id, action=action, environment=environment,
                       commit=commit, status=OK if outcome.ok else FAILED,
                       seconds=round(time.monotonic() - started, 3), error=error)
        with self._lock:
            self._busy.discard(environment)
            del self._running[environment]
            self._changed.notify_all()
            if self._closed:
                return
            if outcome.redeploy and environment not in self._waiting:
                provider = (self.store.get(job_id) or {}).get("provider", "")
                self._asks[environment] = DEPLOY
                self._wait(environment,
                           self.store.create(environment, outcome.redeploy, provider, DEPLOY))
            elif environment in self._waiting:
                self._wait(environment, self._waiting[environment])
