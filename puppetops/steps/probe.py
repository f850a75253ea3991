"""A check that a service answers, which can only be made once it runs.

A plan ends with such checks (the CA answers, the webhook answers /health). A run that
changes nothing has no service to ask where it would have started one: there the check is
what applying the step does, so a noop run says it would check it instead of failing.
"""
from __future__ import annotations

from typing import Any, Callable

from ..step import Finding, Step, StepContext


class Probe(Step):
    """``ask(ctx)`` (its answer is the value, a ``StepError`` if it does not answer) once
    ``running(ctx)`` says the service runs; where it does not run yet, to do: ask ``what``
    once it runs (a real run asks at once, and fails if it does not answer)."""

    def __init__(self, name: str, what: str, running: Callable[[StepContext], bool],
                 ask: Callable[[StepContext], Any]):
        self.name, self.what, self.running, self.ask = name, what, running, ask
        super().__init__()

    def find(self, ctx: StepContext) -> Finding:
        if self.running(ctx):
            return Finding(None, value=self.ask(ctx))
        return Finding(f"check {self.what} once it runs")

    def apply(self, ctx: StepContext, found: Finding) -> Any:
        return self.ask(ctx)
