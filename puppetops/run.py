"""``Run``: everything a plan works with — inventory, connection pool, executor, output.

One ``Run`` is one operator action: its connections are opened lazily and reused by every
step and sub-plan, and closed when the run ends. Its ``id`` names it in the log's run_end,
the JSON document, and whatever it leaves on hosts (e.g. why a compiler is out of the LB).
"""
from __future__ import annotations

import signal
import time
import uuid
from contextlib import contextmanager
from typing import Any, Callable, Iterator, Sequence

import tenacity

from . import rerun
from .basic_steps import RunCommand, Upload
from .errors import Interrupted, LockHeld, PlanFailure, PuppetopsError, UsageError
from .executor import DEFAULT_CONCURRENCY, Executor
from .interrupt import Interruption
from .inventory import Inventory
from .lock import RunLock, describe_holder
from .output import Output
from .plan_registry import get_plan
from .remote_lock import MainLock
from .result import ResultSet
from .step import Call, Step, StepContext
from .target import Target
from .transport.pool import ConnectionPool

TargetSpec = str | Sequence[str] | Sequence[Target] | None
LOCK_POLL = 2.0  # seconds between two looks at a lock another run holds (--wait-lock)


class Run:
    def __init__(self, inventory: Inventory, *, output: Output | None = None,
                 concurrency: int = DEFAULT_CONCURRENCY, attempts: int | None = None,
                 noop: bool = False, timeout: float | None = None,
                 lock: bool | Sequence[Target] = True, backoff: float = 0.5,
                 max_fail_percentage: float | None = None, record: rerun.Record | None = None,
                 lock_wait: float = 0.0):
        """``lock``: the run lock (``puppetops.lock``) — True (the default, also from Python):
        every host of the inventory, since a plan may touch any of them; a list of targets:
        only their hosts (a command on chosen targets); False: none, and no infrastructure
        lock on main either — for a caller that excludes other runs itself, or works on no
        real hosts (``PlanTester``). ``LockHeld`` (exit 75) if another run holds one.
        ``max_fail_percentage``: the run-wide failure limit (``puppetops.failure_limit``).
        ``record``: where ``close`` records each target's outcome (``puppetops.rerun``).
        ``lock_wait``: while another run holds a lock, look again for up to this many seconds
        before ``LockHeld`` (0: refuse at once)."""
        self.inventory, self.noop, self.record = inventory, noop, record
        self.id = uuid.uuid4().hex[:12]
        self.output = output or Output()
        self.pool = ConnectionPool()
        self.interruption = Interruption()
        self.executor = Executor(self.pool, self.output, concurrency=concurrency,
                                 attempts=attempts, noop=noop, timeout=timeout, backoff=backoff,
                                 interruption=self.interruption,
                                 max_fail_percentage=max_fail_percentage)
        self.steps: list[ResultSet] = []
        self.started = time.monotonic()
        self.locking, self.lock_wait = bool(lock), lock_wait
        self._main_locks: dict[str, MainLock] = {}
        self._main_wanted: dict[str, tuple[Target, str]] = {}
        self._lock = RunLock(inventory.targets if lock is True else lock,
                             about={"run": self.id}) if lock else None
        if self._lock:
            self._take(self._lock.acquire)
            if not self._lock.shared:
                self.output.message(f"warning: no shared lock folder is writable; the run lock "
                                    f"in {self._lock.directory} only excludes this user's runs")

    @classmethod
    def from_inventory(cls, path: str, *, strict: bool = False, **kwargs: Any) -> "Run":
        return cls(Inventory.load(path, strict=strict), **kwargs)

    # -- targets ---------------------------------------------------------------------------
    def targets(self, spec: TargetSpec) -> list[Target]:
        """Resolve a target spec (names, aliases, groups, globs, or Target objects).

        A string that selects nothing (a plan parameter ``loadbalancers=''``, an empty group)
        is a ``UsageError``: a plan never runs a step on "nobody" and calls it success."""
        if spec and not isinstance(spec, str) and all(isinstance(t, Target) for t in spec):
            return list(spec)  # type: ignore[arg-type]
        if isinstance(spec, str):
            return self.inventory.select_some(spec)
        return self.inventory.select(spec)  # type: ignore[arg-type]

    def check(self, targets: TargetSpec) -> list[Target]:
        """The resolved targets, once their transport settings are known to be usable.

        Raises ``ConfigError`` (a ``UsageError``: exit 2 in the CLI) for a missing key or
        known_hosts file, an unset password variable or a transport puppetops lacks. Every step
        checks its targets before it starts; the CLI checks the selected ones before the run.
        """
        resolved = self.targets(targets)
        self.pool.check(resolved)
        return resolved

    # -- work ------------------------------------------------------------------------------
    def step(self, step: Step, targets: TargetSpec, **policy: Any) -> ResultSet:
        """Run one step on the targets (lockstep). Policies: catch_errors, max_fail_percentage,
        batch_size. Raises ``PlanFailure`` when the policy says stop."""
        resolved = self.check(targets)
        return self._record(lambda: [self.executor.run_step(step, resolved, **policy)])[0]

    def pipeline(self, steps: Sequence[Step], targets: TargetSpec, *, lockstep: bool = False,
                 **policy: Any) -> list[ResultSet]:
        """Run several steps per target, free (default) or in lockstep."""
        resolved = self.check(targets)
        return self._record(lambda: self.executor.run_pipeline(steps, resolved, lockstep=lockstep,
                                                               **policy))

    def _record(self, work: Callable[[], list[ResultSet]]) -> list[ResultSet]:
        """Keep every step's results for the run summary, failed ones included. Once the run
        is interrupted no step starts, and one that was running ends the plan with
        ``Interrupted`` (its results kept) rather than letting the plan go on."""
        self.interruption.check()
        self._hold_main_locks()
        try:
            sets = work()
        except PlanFailure as exc:
            self.steps.append(exc.results)
            self.interruption.check()
            raise
        self.steps.extend(sets)
        self.interruption.check()
        return sets

    def each(self, name: str, fn: Callable[[StepContext], Any], targets: TargetSpec,
             **policy: Any) -> ResultSet:
        """Run ``fn(ctx)`` on each target as an ``ok`` step whose value is what fn returns."""
        retry = policy.pop("retry_on_failure", False)
        return self.step(Call(name, fn, retry_on_failure=retry), targets, **policy)

    def command(self, command: str, targets: TargetSpec, **policy: Any) -> ResultSet:
        return self.step(RunCommand(command), targets, **policy)

    def upload(self, source: str, destination: str, targets: TargetSpec, *,
               mode: int | None = None, **policy: Any) -> ResultSet:
        return self.step(Upload(source, destination, mode=mode), targets, **policy)

    def plan(self, plan: str | Callable[..., Any], **params: Any) -> Any:
        """Run another plan inside this run (same connections, same output)."""
        fn = get_plan(plan).fn if isinstance(plan, str) else plan
        return fn(self, **params)

    def lock_infrastructure(self, main: TargetSpec, plan: str, *, required: bool = True) -> None:
        """Hold the infrastructure lock (``puppetops.remote_lock``) on the ``main`` server(s)
        from the plan's first step until the run ends; plans declared ``@plan(main=...)`` call
        it as they start. The lock is taken at the first step, not here, so that a plan's own
        checks of its parameters still refuse bad input (exit 2) before any host is contacted.
        Once per server (a sub-plan on the same main takes nothing more); nothing for a run
        without locks. ``required=False`` (the plan's default main): an inventory without such
        a target has no main server to lock, and the run goes on with its local lock only."""
        if not self.locking:
            return
        try:
            servers = self.targets(main)
        except UsageError:
            if required:
                raise
            return
        for server in servers:
            self._main_wanted.setdefault(server.name, (server, plan))

    def _hold_main_locks(self) -> None:
        """Take the infrastructure locks asked for so far (sorted: no two runs wait in turn),
        and again any whose connection ended since the last step."""
        for name, lock in sorted(self._main_locks.items()):
            if not lock.held:
                self._retake(name, lock)
        for name in sorted(set(self._main_wanted) - set(self._main_locks)):
            server, plan = self._main_wanted[name]
            lock = MainLock(self.pool, server, {"plan": plan, "run": self.id})
            self._take(lock.acquire)
            self._main_locks[name] = lock

    def _take(self, acquire: Callable[[], None]) -> None:
        """``acquire`` a lock; with ``lock_wait``, while another run holds it, try again every
        few seconds (saying once whose it is) until that much time has passed. An interrupt
        ends the wait at once."""
        if not self.lock_wait:
            acquire()
            return
        said: list[str] = []

        def attempt() -> None:
            try:
                acquire()
            except LockHeld as exc:
                if exc.resource not in said:
                    said.append(exc.resource)
                    self.message(f"waiting up to {self.lock_wait:.0f} s for the lock on "
                                 f"{exc.resource}, held by another puppetops run: "
                                 f"{describe_holder(exc.holder)}")
                raise
        try:
            tenacity.Retrying(stop=tenacity.stop_after_delay(self.lock_wait),
                              wait=tenacity.wait_fixed(min(LOCK_POLL, self.lock_wait)),
                              retry=tenacity.retry_if_exception_type(LockHeld),
                              sleep=self.interruption.sleep, reraise=True)(attempt)
        except LockHeld as exc:
            raise LockHeld(f"{exc} (waited {self.lock_wait:.0f} s)", holder=exc.holder,
                           resource=exc.resource) from None

    def _retake(self, name: str, lock: MainLock) -> None:
        """The lock's connection ended mid-run (a network drop, sshd restarted on main): take
        the lock again, or stop before the next step when another run holds it by now — two
        runs must never change the infrastructure at once."""
        lost = (f"the infrastructure lock on {name} was lost during the run (its SSH "
                "connection ended)")
        lock.release()
        try:
            lock.acquire()
        except PuppetopsError as exc:  # LockHeld too: no refusal at the start, an error now
            del self._main_locks[name]
            why = (f"another run holds it now: {describe_holder(exc.holder)}"
                   if isinstance(exc, LockHeld) else str(exc))
            raise PuppetopsError(f"{lost}; the run stops before its next step ({why})") from None
        self.message(f"warning: {lost}; it was free and is held again")

    def message(self, text: str) -> None:
        self.output.message(text)

    # -- stopping on request ---------------------------------------------------------------
    def interrupt(self, signum: int = signal.SIGINT) -> None:
        """Ask the run to stop, as SIGINT/SIGTERM do under the CLI; safe from any thread."""
        self.interruption.request(signum)

    @property
    def interrupted(self) -> str | None:
        """The signal's name (``SIGINT``, ``SIGTERM``) once the run was asked to stop."""
        return self.interruption.name

    @contextmanager
    def on_interrupt(self, undo: Callable[[], Any]) -> Iterator[None]:
        """Run ``undo()`` if the block is interrupted, then let ``Interrupted`` go on.

        The undo's steps run although the run is interrupted; a further signal stops them
        (the undo is then left unfinished, and said so). An undo that fails is reported,
        never raised over the interruption.
        """
        try:
            yield
        except Interrupted:
            with self.interruption.undoing():
                try:
                    undo()
                except Interrupted:
                    self.message(f"undo stopped: interrupted again ({self.interrupted})")
                except PuppetopsError as exc:
                    self.message(f"undo failed: {exc}")
            raise

    # -- end -------------------------------------------------------------------------------
    @property
    def ok(self) -> bool:
        """Every step ok, and the run not interrupted (it did not do all it was asked to)."""
        return all(rs.ok for rs in self.steps) and not self.interrupted

    def summary(self, **extra: Any) -> dict[str, Any]:
        """``targets``: how many distinct targets the run worked on; ``failed_targets`` those
        with a failed or unreachable step; ``not_run_targets`` the others the run stopped
        before (timeout, failure limit, interruption)."""
        results = [r for rs in self.steps for r in rs]
        failed = list(dict.fromkeys(r.target for r in results if not r.ok))
        not_run = [t for t in dict.fromkeys(r.target for r in results if r.not_run)
                   if t not in failed]
        return {"ok": self.ok and not extra.get("error"), "run_id": self.id, "interrupted": self.interrupted,
                "targets": len({r.target for r in results}),
                "failed_targets": failed, "not_run_targets": not_run, "noop": self.noop,
                "duration": round(time.monotonic() - self.started, 3), **extra}

    def close(self, **extra: Any) -> None:
        """Record each target's outcome (``record``), report the end of the run, close
        connections, release the lock. ``error`` in ``extra``: the run was stopped by it."""
        try:
            self._save_outcomes(stopped=bool(extra.get("error")) or bool(self.interrupted))
            self.output.run_end(self.summary(**extra))
        finally:
            self.pool.close()
            self.close_lock()

    def _save_outcomes(self, stopped: bool) -> None:
        """A run that ran no step (refused by a lock, stopped before its first step) has no
        outcomes, and a noop run's say nothing of the hosts' state: the last run's stay for
        ``--rerun``."""
        if self.record is None or not self.steps or self.noop:
            return
        try:
            self.record.save(self.steps, stopped)
        except OSError as exc:
            self.message(f"warning: cannot write {self.record.path} ({exc.strerror or exc}); "
                         "a later --rerun would use an older run's outcomes")

    def release_infrastructure(self) -> None:
        """Release the infrastructure locks on main before the run ends: for a last part
        that waits for another locked run — the demo waits for the webhook's deploy, which
        takes the same lock. A later plan declaring main takes them again."""
        self._main_wanted.clear()
        while self._main_locks:
            self._main_locks.popitem()[1].release()

    def close_lock(self) -> None:
        """Release the infrastructure locks on main, then the local run lock."""
        self.release_infrastructure()
        if self._lock:
            self._lock.release()
            self._lock = None

    def __enter__(self) -> "Run":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
