"""How the stand-up plans move many targets through many steps.

``Cohort``: the targets a plan works on (compilers, agents). A target that fails a step
leaves the cohort and the others carry on (one bad agent must not stop the enrolment of a
hundred); its failure stays in the run's results, so the run still ends failed.

Shared infrastructure (main, the load balancers) must not fail quietly: nothing else can go
on without it, so its steps stop the plan (plain ``run.step``, or ``Cohort(..., stop=True)``
where a flow written for a cohort runs on main alone).

What a plan returns — one result per target for the whole plan — is ``@plan``'s business
(``puppetops.plan_registry``), not the plan's.

These are the core's plan helpers, for any plan (exported from ``puppetops``).
"""
from __future__ import annotations

from typing import Any, Callable, Iterable, Sequence

from .errors import TransportError, UsageError
from .result import CHANGED, ResultSet
from .run import Run, TargetSpec
from .step import Call, Step, StepContext
from .target import Target


class Cohort:
    def __init__(self, run: Run, targets: Sequence[Target], *, stop: bool = False):
        self.run, self.stop = run, stop
        self.members = list(targets)
        self._failed: set[str] = set()

    @property
    def live(self) -> list[Target]:
        return [t for t in self.members if t.name not in self._failed]

    def _pick(self, only: Iterable[Target] | None) -> list[Target]:
        if only is None:
            return self.live
        wanted = {t.name for t in only}
        return [t for t in self.live if t.name in wanted]

    def step(self, step: Step, only: Iterable[Target] | None = None) -> ResultSet:
        """Run ``step`` on the live members (or those of ``only`` still live), in parallel."""
        targets = self._pick(only)
        if not targets:
            return ResultSet(name=step.name)
        results = self.run.step(step, targets, catch_errors=not self.stop)
        self._failed.update(results.error_set.names)
        return results

    def each(self, name: str, fn: Callable[[StepContext], Any],
             only: Iterable[Target] | None = None) -> ResultSet:
        return self.step(Call(name, fn), only)

    def pipeline(self, steps: Sequence[Step]) -> list[ResultSet]:
        """Each live member runs through ``steps`` at its own pace (no waiting for the
        slowest between steps); a member stops at its first failure."""
        targets = self.live
        if not targets or not steps:
            return []
        sets = self.run.pipeline(steps, targets, catch_errors=not self.stop)
        for results in sets:
            self._failed.update(results.error_set.names)
        return sets


def single(run: Run, spec: TargetSpec, role: str) -> Target:
    """The one target ``spec`` selects (e.g. the ``main`` group); a usage error otherwise."""
    targets = run.targets(spec)
    if len(targets) != 1:
        raise UsageError(f"{role}: {spec!r} must select exactly one target, "
                         f"it selects {len(targets)}")
    return targets[0]


def changed(sets: Iterable[ResultSet]) -> set[str]:
    """Names of the targets some of these steps changed (or would change, in noop)."""
    return {r.target for rs in sets for r in rs if r.status == CHANGED}


def answering(run: Run, targets: Sequence[Target]) -> list[Target]:
    """Those of ``targets`` that answer at all. For plans that can do their work without a
    host — decommissioning one that is gone for good — so one that does not answer is a fact
    the plan reports, not a failed step (and one attempt: a gone host is not worth the
    transport's retries)."""
    def probe(ctx: StepContext) -> bool:
        try:
            ctx.run("true")
        except TransportError:
            return False
        return True

    if not targets:
        return []
    found = run.each("reachable", probe, targets)
    return [t for t in targets if found.find(t.name).value]
