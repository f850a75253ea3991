"""What rotate_lb_member does to a compiler while it is out of the load balancer.

An action is resolved before anything runs, so a misspelt one is a usage error and not a
compiler drained for nothing: ``restart`` (default: a new Puppet Server JVM), ``upgrade``
(the puppetserver package, then a restart so the new version runs), the name of any plan
taking ``targets``, or — from Python — a step, a list of steps, or a function
``fn(run, targets)``. A failed action raises ``PlanFailure``, which stops the rotation.
"""
from __future__ import annotations

from typing import Any, Callable, Sequence

from ..errors import PlanFailure, UsageError
from ..plan_registry import get_plan
from ..run import Run
from ..step import Step, StepContext
from ..target import Target
from .package_upgrade import PackagesUpgraded
from .puppetserver import PuppetserverRefresh

MaintenanceAction = Callable[[Run, list[Target]], Any]
ActionSpec = str | Step | Sequence[Step] | MaintenanceAction
BUILT_IN = ("restart", "upgrade")


class Restart(PuppetserverRefresh):
    """A new Puppet Server JVM: stop, start, ready (a stopped server is left to the health
    gate, which starts it)."""

    def __init__(self) -> None:
        super().__init__(restart=True)

    def check(self, ctx: StepContext) -> str | None:
        return "restart puppetserver (a new JVM)" if super().check(ctx) else None


def _steps(steps: Sequence[Step]) -> MaintenanceAction:
    return lambda run, targets: run.pipeline(list(steps), targets)


def _plan(name: str) -> MaintenanceAction:
    try:
        info = get_plan(name)
    except UsageError as exc:
        raise UsageError(f"maintenance action {name!r} is neither {' nor '.join(BUILT_IN)} nor a "
                         f"plan: {exc}") from None
    if "targets" not in info.parameters:
        raise UsageError(f"plan {name} cannot be a maintenance action: it takes no targets")

    def run_plan(run: Run, targets: list[Target]) -> Any:
        value = run.plan(info.fn, targets=",".join(t.name for t in targets))
        if not getattr(value, "ok", True):
            raise PlanFailure(f"maintenance plan {name} failed", value)
        return value
    return run_plan


def action(spec: ActionSpec) -> MaintenanceAction:
    if isinstance(spec, Step):
        return _steps([spec])
    if spec == "restart":
        return _steps([Restart()])
    if spec == "upgrade":
        return _steps([PackagesUpgraded("puppetserver"), Restart()])
    if isinstance(spec, str):
        return _plan(spec)
    if callable(spec):
        return spec
    if all(isinstance(s, Step) for s in spec):
        return _steps(spec)
    raise UsageError(f"unknown maintenance action {spec!r}: use {' or '.join(BUILT_IN)}, "
                     "a plan name, steps or a function")
