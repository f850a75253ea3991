"""Runs steps on many targets in parallel, with retries of transient faults and failure policies.

Two schedules:
- ``run_step``: one step on every target (in rolling batches if asked); the caller gets the
  whole ResultSet before doing anything else — lockstep, for cross-host dependencies.
- ``run_pipeline``: a sequence of steps per target, each target moving on as soon as its own
  previous step is done (Ansible's ``free`` strategy): one slow host holds up nobody.
"""
from __future__ import annotations

import math
import threading
import time
from concurrent.futures import ThreadPoolExecutor, wait
from typing import Iterable, Protocol, Sequence

from tenacity import (Retrying, retry_if_exception, stop_after_attempt, wait_exponential,
                      wait_random)

from . import bounds, secrets
from .errors import (CommandTimeout, PlanFailure, PuppetopsError, StepError,
                     TransientTransportError, TransportError)
from .failure_limit import FailureLimit
from .heartbeat import DEFAULT_INTERVAL, Heartbeat, Watch
from .interrupt import Interruption
from .inventory.schema import setting
from .result import FAILED, SKIPPED, UNREACHABLE, Result, ResultSet
from .step import Step, StepContext
from .target import Target
from .transport.pool import ConnectionPool

DEFAULT_CONCURRENCY = 100
_IN_WORKER = threading.local()  # set in the threads of every Executor's shared worker pool


def _mark_worker() -> None:
    """Pool initializer; a plain function, so idle threads hold no reference to the Executor."""
    _IN_WORKER.active = True


class Events(Protocol):
    """What the executor reports while it works (see ``puppetops.output``)."""

    def step_start(self, step: str, targets: Sequence[Target]) -> None: ...
    def target_done(self, result: Result, done: int, total: int, failed: int) -> None: ...
    def step_end(self, results: ResultSet) -> None: ...
    def heartbeat(self, step: str, target: str, elapsed: float, waiting_for: str) -> None: ...


class NoEvents:
    def step_start(self, step, targets): pass
    def target_done(self, result, done, total, failed): pass
    def step_end(self, results): pass
    def heartbeat(self, step, target, elapsed, waiting_for): pass


class _Progress:
    """Thread-safe done/failed counters for one step's progress line."""

    def __init__(self, events: Events, total: int):
        self.events, self.total, self.done, self.failed = events, total, 0, 0
        self._lock = threading.Lock()

    def report(self, result: Result) -> None:
        with self._lock:
            self.done += 1
            self.failed += not result.ok
            self.events.target_done(result, self.done, self.total, self.failed)


class Executor:
    """Parallel step runner bound to one connection pool (one per run).

    ``attempts`` overrides every target's ``attempts`` config; ``timeout`` is an overall
    limit for the run in seconds: steps that would start after it are skipped and remote
    calls are cut short at it. Once ``interruption`` says stop, no target starts a step
    (skipped, "not run: interrupted") and steps' waits end (see puppetops.interrupt).
    ``max_fail_percentage`` is the run-wide failure limit (see ``puppetops.failure_limit``);
    ``heartbeat.interval`` the seconds between heartbeats of a step still running on a
    target (see ``puppetops.heartbeat``).
    """

    def __init__(self, pool: ConnectionPool, events: Events | None = None, *,
                 concurrency: int = DEFAULT_CONCURRENCY, attempts: int | None = None,
                 noop: bool = False, timeout: float | None = None, backoff: float = 0.5,
                 interruption: Interruption | None = None,
                 max_fail_percentage: float | None = None,
                 heartbeat_interval: float = DEFAULT_INTERVAL):
        bounds.COUNT.check(concurrency, "concurrency")
        self.pool, self.events = pool, events or NoEvents()
        self.concurrency, self.attempts, self.noop, self.backoff = concurrency, attempts, noop, backoff
        self.deadline = time.monotonic() + timeout if timeout else None
        self.interruption = interruption
        self.failure_limit = (FailureLimit(max_fail_percentage)
                              if max_fail_percentage is not None else None)
        self.heartbeat = Heartbeat(self.events.heartbeat, heartbeat_interval)
        self._workers: ThreadPoolExecutor | None = None
        self._workers_lock = threading.Lock()

    # -- public API ------------------------------------------------------------------------
    def run_step(self, step: Step, targets: Sequence[Target], *, catch_errors: bool = False,
                 max_fail_percentage: float | None = None,
                 batch_size: int | None = None) -> ResultSet:
        """Run ``step`` on ``targets``; see ``_enforce`` for the failure policies."""
        results = ResultSet(name=step.name)
        progress = self._start(step.name, targets)
        in_batches = batches(list(targets), batch_size)
        for index, batch in enumerate(in_batches):
            results.extend(self._parallel(batch, lambda t: self._one(step, t), progress))
            if self._too_many_failures(results, len(targets), max_fail_percentage, catch_errors):
                for rest in in_batches[index + 1:]:
                    for target in rest:
                        skipped = Result(target.name, step.name, SKIPPED,
                                         "not run: too many failures in earlier batches")
                        results.add(skipped)
                        progress.report(skipped)
                break
        self.events.step_end(results)
        self._stop_at_failure_limit(results)
        self._enforce(results, len(targets), catch_errors, max_fail_percentage)
        return results

    def run_pipeline(self, steps: Sequence[Step], targets: Sequence[Target], *,
                     lockstep: bool = False, catch_errors: bool = False,
                     max_fail_percentage: float | None = None) -> list[ResultSet]:
        """Run ``steps`` in order on each target; a target stops at its first failed step.

        ``lockstep``: every target finishes step N before any starts step N+1.
        Otherwise each target runs through the steps on its own (free strategy).
        """
        if lockstep:
            sets, remaining = [], list(targets)
            for step in steps:
                rs = self.run_step(step, remaining, catch_errors=True)
                sets.append(rs)
                failed = {r.target for r in rs.error_set}
                remaining = [t for t in remaining if t.name not in failed]
        else:
            sets = self._free_pipeline(steps, targets)
        combined = ResultSet(name="pipeline")
        for rs in sets:
            combined.extend(rs)
        self._stop_at_failure_limit(combined)
        self._enforce(_last_per_target(combined), len(targets), catch_errors, max_fail_percentage)
        return sets

    # -- internals -------------------------------------------------------------------------
    def _start(self, name: str, targets: Sequence[Target]) -> _Progress:
        if self.failure_limit is not None:
            self.failure_limit.include(t.name for t in targets)
        self.events.step_start(name, targets)
        return _Progress(self.events, len(targets))

    def _free_pipeline(self, steps: Sequence[Step], targets: Sequence[Target]) -> list[ResultSet]:
        sets = [ResultSet(name=s.name) for s in steps]
        label = " → ".join(s.name for s in steps)
        progress = self._start(label, targets)

        def through(target: Target) -> Result:
            result = None
            for step, rs in zip(steps, sets):
                result = self._one(step, target)
                rs.add(result)
                if not result.ok:
                    break
            return result

        self._parallel(targets, through, progress)
        order = {t.name: i for i, t in enumerate(targets)}
        for rs in sets:  # keep inventory order in each set, whatever order targets finished in
            rs.results.sort(key=lambda r: order[r.target])
        combined = ResultSet(name=label)
        for rs in sets:
            combined.extend(rs)
        self.events.step_end(combined)
        return sets

    def _parallel(self, targets: Sequence[Target], work, progress: _Progress) -> list[Result]:
        if not targets:
            return []
        results: list[Result | None] = [None] * len(targets)

        def job(index: int) -> None:
            result = work(targets[index])
            results[index] = result
            progress.report(result)

        workers = min(self.concurrency, len(targets))
        if workers == 1:
            for i in range(len(targets)):
                job(i)
        elif getattr(_IN_WORKER, "active", False):
            # A step that runs steps itself: a pool of its own, so it never waits for a worker
            # of the pool it occupies.
            with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="puppetops") as pool:
                list(pool.map(job, range(len(targets))))
        else:
            futures = [self._shared_workers().submit(job, i) for i in range(len(targets))]
            wait(futures)
            for future in futures:  # every job has finished; re-raise the first error, if any
                future.result()
        return results  # type: ignore[return-value]

    def _shared_workers(self) -> ThreadPoolExecutor:
        """The run's worker threads, kept from step to step.

        Starting ``concurrency`` threads for every step costs CPU and churns the GIL while the
        connections' transport threads also want it (docs/benchmarks.md, "What changed in the transport", 6). Idle workers exit
        when the Executor is garbage collected (ThreadPoolExecutor's own weak reference).
        """
        with self._workers_lock:
            if self._workers is None:
                self._workers = ThreadPoolExecutor(max_workers=self.concurrency,
                                                   thread_name_prefix="puppetops",
                                                   initializer=_mark_worker)
            return self._workers

    def _one(self, step: Step, target: Target) -> Result:
        """Run one step on one target, with retries and heartbeats; never raises."""
        if self.failure_limit is not None and self.failure_limit.exceeded:
            return self.failure_limit.skip(target.name, step.name)
        with self.heartbeat.watch(step.name, target.name, step.waits_for) as watch:
            result = self._attempt(step, target, watch)
        if self.failure_limit is not None:
            self.failure_limit.record(result)
        return result

    def _attempt(self, step: Step, target: Target, watch: Watch) -> Result:
        start = time.monotonic()
        attempts = 0
        if self.deadline is not None and start >= self.deadline:
            return Result(target.name, step.name, SKIPPED, "not run: the run's timeout passed")
        if self.interruption is not None and self.interruption.stop.is_set():
            return Result(target.name, step.name, SKIPPED, "not run: interrupted")
        limit = self.attempts or int(setting(target.transport_config, "ssh", "attempts"))

        def attempt():
            nonlocal attempts
            attempts += 1
            conn = self.pool.get(target)
            ctx = StepContext(target, conn, noop=self.noop, timeout=step.timeout,
                              deadline=self.deadline, interruption=self.interruption,
                              watch=watch)
            return step.execute(ctx)

        retrying = Retrying(stop=stop_after_attempt(limit), reraise=True,
                            wait=wait_exponential(multiplier=self.backoff, max=15)
                            + wait_random(0, self.backoff),
                            retry=retry_if_exception(lambda e: self._retryable(step, e)))
        try:
            outcome = retrying(attempt)
        except TransportError as exc:
            status = FAILED if isinstance(exc, CommandTimeout) else UNREACHABLE
            return self._result(target, step, status, str(exc), start, attempts)
        except StepError as exc:
            return self._result(target, step, FAILED, str(exc), start, attempts,
                                exit_code=exc.command_exit_code, stdout=exc.stdout, stderr=exc.stderr)
        except PuppetopsError as exc:  # Interrupted too: a wait cut short, the step did not finish
            return self._result(target, step, FAILED, str(exc), start, attempts)
        except Exception as exc:
            # A bug (ours or a plan's): named as one, so it is never taken for the host's fault;
            # not retried; and it must not hide the other targets' results.
            return self._result(target, step, FAILED, f"internal error: {type(exc).__name__}: {exc}",
                                start, attempts)
        return Result(target.name, step.name, outcome.status, secrets.mask(outcome.message),
                      outcome.exit_code, outcome.stdout, outcome.stderr,
                      time.monotonic() - start, attempts, self.noop, outcome.value)

    def _retryable(self, step: Step, exc: BaseException) -> bool:
        if self.deadline is not None and time.monotonic() >= self.deadline:
            return False
        if isinstance(exc, TransientTransportError):
            return True
        return step.retry_on_failure and isinstance(exc, StepError)

    def _result(self, target: Target, step: Step, status: str, message: str, start: float,
                attempts: int, **output) -> Result:
        return Result(target.name, step.name, status, secrets.mask(message),
                      duration=time.monotonic() - start, attempts=attempts, noop=self.noop,
                      **{k: secrets.mask(v) if isinstance(v, str) else v for k, v in output.items()})

    def _stop_at_failure_limit(self, results: ResultSet) -> None:
        if self.failure_limit is not None and self.failure_limit.exceeded:
            raise self.failure_limit.failure(results)

    @staticmethod
    def _too_many_failures(results: ResultSet, total: int, max_fail_percentage: float | None,
                           catch_errors: bool) -> bool:
        failed = len(results.error_set)
        if max_fail_percentage is not None:
            return failed > math.floor(total * max_fail_percentage / 100.0)
        return failed > 0 and not catch_errors

    def _enforce(self, results: ResultSet, total: int, catch_errors: bool,
                 max_fail_percentage: float | None) -> None:
        """Raise ``PlanFailure`` unless the failures are allowed.

        Default: any failure stops the plan. ``catch_errors``: never stop, the caller looks at
        the results. ``max_fail_percentage``: stop only when more than that share failed.
        """
        if catch_errors and max_fail_percentage is None:
            return
        if self._too_many_failures(results, total, max_fail_percentage, catch_errors):
            failed = results.error_set
            raise PlanFailure(f"{results.name or 'step'} failed on {len(failed)} of {total} "
                              f"target(s): {', '.join(failed.names)}", results)


def batches(targets: list[Target], size: int | None) -> list[list[Target]]:
    """``targets`` in rolling batches of ``size`` (None: one batch of all; no targets: no
    batch); ``UsageError`` for a size that is no count."""
    if size is not None:
        bounds.COUNT.check(size, "batch_size")
    if size is None or size >= len(targets):
        return [targets] if targets else []
    return [targets[i:i + size] for i in range(0, len(targets), size)]


def _last_per_target(results: Iterable[Result]) -> ResultSet:
    last: dict[str, Result] = {}
    for r in results:
        last[r.target] = r
    return ResultSet(list(last.values()), name="pipeline")
