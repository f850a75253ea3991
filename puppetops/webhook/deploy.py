"""The plan boundary: what a deploy and a removal are, and the real ones — the
``deploy_code`` and ``remove_environment`` plans.

The queue only knows ``Plans``: ``deploy`` (environment, commit) → ``JobOutcome``, ``remove``
(environment) → ``JobOutcome``, and ``interrupt`` (ask what runs to stop at a safe point). The
server uses a ``PlanRunner``; tests and the benchmark pass their own ``Plans`` at this seam, so
everything in front of it (HTTP, signatures, queue, store) runs for real while the plans are
stubbed.
"""
from __future__ import annotations

import signal
import threading
from dataclasses import dataclass
from typing import Any, Callable, Protocol

import tenacity

from ..errors import LockHeld, PlanFailure, PuppetopsError
from ..inventory import Inventory
from ..output import Output
from ..puppet import node
from ..run import Run

LOCK_RETRY = 5.0  # seconds between attempts while another run holds the locks


class _Woken(Exception):
    """``interrupt`` ended a wait for the locks."""


@dataclass(frozen=True)
class JobOutcome:
    """How one webhook job (a deploy or a removal) ended, as its record keeps it."""

    ok: bool
    result: Any = None  # JSON-able: the plan's per-server results
    error: str = ""
    redeploy: str = ""  # a removal refused because the branch exists: deploy this head instead


class Plans(Protocol):
    def deploy(self, environment: str, commit: str) -> JobOutcome: ...

    def remove(self, environment: str) -> JobOutcome: ...

    def interrupt(self, signum: int) -> None:
        """Ask the running plans to stop at their next safe point (a step boundary); each
        then returns a failed ``JobOutcome`` saying so. Safe from any thread."""


class PlanRunner:
    """Runs the plans behind the webhook for one inventory: ``deploy`` (``deploy_code`` for one
    environment on main and every compiler: same commit everywhere before any cache flush,
    drain on failure — the plan's own guarantees) and ``remove`` (``remove_environment``: a
    deleted branch's environment off every server, refused while the branch exists).

    The inventory is read again for each run, so a compiler added to it is deployed to
    without restarting the webhook. Each run is a locked run like any other (the run lock
    on every host, the infrastructure lock on main), so it never overlaps an operator's
    ``invoke deploy-code`` or another controller's plan: while one holds the locks the run
    waits (up to ``lock_wait`` seconds, then it fails saying who holds them). For the same
    reason this process runs one plan at a time: environments queued at once take turns.

    ``interrupt`` goes through the run's own interrupt machinery (``Run.interrupt``, as
    SIGINT/SIGTERM under the CLI): the plan starts nothing new, ends at a step boundary and
    undoes what it must (a compiler out of load balancing goes back). A run waiting for the
    locks stops waiting. Once interrupted, the runner starts no further plan.
    """

    def __init__(self, inventory: str, *, main: str = "main", targets: str = "main,compilers",
                 loadbalancers: str = "loadbalancers", lock_wait: float = 900.0,
                 lock_retry: float = LOCK_RETRY):
        self.inventory, self.main, self.targets = inventory, main, targets
        self.loadbalancers, self.lock_wait = loadbalancers, lock_wait
        self.lock_retry = lock_retry
        self._one_at_a_time = threading.Lock()
        self._stop: int | None = None  # the signal that interrupted this runner
        self._current: Run | None = None
        self._guard = threading.Lock()  # _stop and _current
        self._woken = threading.Event()  # set by interrupt: stop waiting for locks

    def deploy(self, environment: str, commit: str) -> JobOutcome:
        from puppetops.plans.deploy_code import deploy_code
        outcome = self.run_plan(deploy_code, env=environment, targets=self.targets,
                               main=self.main, loadbalancers=self.loadbalancers)
        return JobOutcome(outcome.ok, {"commit_pushed": commit, **outcome.result}, outcome.error)

    def remove(self, environment: str) -> JobOutcome:
        from puppetops.plans.remove_environment import remove_environment
        return self.run_plan(remove_environment, env=environment, targets=self.targets,
                             main=self.main)

    def interrupt(self, signum: int) -> None:
        with self._guard:
            self._stop = signum
            if self._current is not None:
                self._current.interrupt(signum)
            self._woken.set()

    def run_plan(self, plan: Callable[..., Any], **params: str) -> JobOutcome:
        """``plan(run, **params)`` in a locked run of its own on the inventory, taking turns
        with this runner's other plans and waiting for other runs' locks."""
        with self._one_at_a_time:
            try:
                return tenacity.Retrying(
                    stop=tenacity.stop_before_delay(self.lock_wait),
                    wait=tenacity.wait_fixed(self.lock_retry), sleep=self._pause, reraise=True,
                    retry=tenacity.retry_if_exception_type(LockHeld),
                )(self._run_once, plan, params)
            except LockHeld as exc:
                return JobOutcome(False, {"servers": []}, f"{exc} (waited {self.lock_wait:.0f} s)")
            except _Woken:
                return self._refused("while waiting for the locks")

    def _pause(self, seconds: float) -> None:
        """The wait between attempts, cut short by ``interrupt``."""
        if self._woken.wait(seconds):
            raise _Woken

    def _refused(self, when: str) -> JobOutcome:
        name = signal.Signals(self._stop or signal.SIGTERM).name
        return JobOutcome(False, {"servers": []}, f"interrupted by {name} {when}: nothing done")

    def _run_once(self, plan: Callable[..., Any], params: dict[str, str]) -> JobOutcome:
        """One locked run of ``plan``; ``LockHeld`` when another run holds a lock."""
        if self._stop is not None:
            return self._refused("before it started")
        try:
            run = Run(Inventory.load(self.inventory), output=Output())
        except LockHeld:
            raise
        except PuppetopsError as exc:
            return JobOutcome(False, {"servers": []}, str(exc))
        with self._guard:
            self._current = run
            if self._stop is not None:
                run.interrupt(self._stop)
        try:
            return _outcome(run, plan, params)
        finally:
            with self._guard:
                self._current = None


def inventory_prefix(inventory: str, main: str) -> str | None:
    """r10k's source prefix the plans deploy under (var ``r10k_prefix`` of ``main`` in
    ``inventory``; "" for none), or None when the inventory cannot tell (unreadable, no single
    main: then no deploy can run either, and each says why)."""
    try:
        found = Inventory.load(inventory).select_some(main)
    except PuppetopsError:
        return None
    return node.environment_prefix(found[0]) if len(found) == 1 else None


def _outcome(run: Run, plan: Callable[..., Any], params: dict[str, str]) -> JobOutcome:
    """``plan`` run to its end (or its interruption) in ``run``, which is then closed."""
    from puppetops.plans.remove_environment import BranchExists
    results, error, redeploy = None, "", ""
    try:
        results = plan(run, **params)
    except PlanFailure as exc:
        results, error = exc.results, str(exc)
    except LockHeld:
        raise
    except BranchExists as exc:
        error, redeploy = str(exc), exc.commit
    except PuppetopsError as exc:  # Interrupted too: "interrupted by SIGTERM: stopped"
        error = str(exc)
    finally:
        run.close()
    servers = [r.to_dict() for r in results] if results is not None else []
    ok = not error and results is not None and results.ok
    if not ok and not error:
        error = "; ".join(f"{r.target}: {r.message}" for r in results.error_set) \
            or f"{plan.__name__} failed"
    return JobOutcome(ok, {"servers": servers}, error, redeploy)
