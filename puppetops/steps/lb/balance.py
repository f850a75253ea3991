"""The LB hosts set up to balance a set of compilers: what configure_lb does, and the LB part
of add_compiler (the LB's current members plus the new compilers), with the same steps."""
from __future__ import annotations

from typing import Mapping

from ...run import Run
from ...step import StepContext
from ...target import Target
from . import backends
from .left_out import warn_leftovers
from .membership import LbView, view
from .pool import Member


def current_members(ctx: StepContext) -> list[Member]:
    """The compilers an LB host balances now (read from its config)."""
    return backends.of(ctx.target).current_members(ctx)


def _balancing(ctx: StepContext) -> LbView:
    """The LB host's members and out-of-LB records; none on a host that does not balance
    yet (a new one)."""
    return view(ctx) if backends.of(ctx.target).balancing(ctx) else LbView({}, {})


def balance(run: Run, lbs: list[Target], members: Mapping[str, list[Member]],
            up: Mapping[str, list[Member]]) -> None:
    """Each LB host balances ``members[lb]`` and sees ``up[lb]`` UP. An LB failure stops the
    plan: nothing can reach the compilers without it. Members another run left out are
    warned about first."""
    warn_leftovers(run, run.each("LB members", _balancing, lbs))
    for backend in backends.BACKENDS.values():
        chosen = [t for t in lbs if backends.of(t) is backend]
        if chosen:
            run.pipeline(backend.setup(members, up), chosen)
