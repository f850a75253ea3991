"""What every load-balancer backend offers puppetops: one interface, a class per backend
(``haproxy.HAProxy``, ``nginx.Nginx``), chosen once per LB host by ``backends.of``.

The rest of puppetops — configure_lb, add_compiler, the membership steps of deploy_code,
rotate_lb_member and lb_ready — talks only to this interface, so no code outside a backend's
own module asks which backend an LB host runs.

A member's state is three levels the operator sets (ready, drain, maint) and what the LB
sees of it (up, sessions); a backend with fewer levels maps onto these (nginx: maint only).
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Mapping

from ...step import Step, StepContext
from ..packages import Packages
from ..services import Service
from .pool import Member

READY, DRAIN, MAINT = "ready", "drain", "maint"


@dataclass(frozen=True)
class MemberState:
    name: str
    admin: str  # ready, drain or maint (what the operator set)
    up: bool  # passes its health check (HAProxy) / answers from the LB host (nginx)
    sessions: int
    detail: str = ""  # what the LB itself says (HAProxy: status and check, e.g. "UP L7OK")

    @property
    def serving(self) -> bool:
        """Takes new agent connections: set ready and healthy."""
        return self.admin == READY and self.up


class Backend(ABC):
    """One kind of load balancer on an LB host."""

    name: str  # the value of the inventory var lb_backend
    packages: tuple[str, ...]
    service: str

    def setup(self, members: Mapping[str, list[Member]],
              up: Mapping[str, list[Member]]) -> list[Step]:
        """The steps that make each LB host balance ``members[lb]`` and see ``up[lb]`` up:
        packages, config, service, members up."""
        return [Packages(*self.packages), self.config(members), Service(self.service),
                self.members_up(up)]

    @abstractmethod
    def config(self, members: Mapping[str, list[Member]]) -> Step:
        """The step that writes the config balancing exactly ``members[lb]``."""

    @abstractmethod
    def members_up(self, up: Mapping[str, list[Member]]) -> Step:
        """The step that waits until the LB sees each of ``up[lb]`` serving."""

    @abstractmethod
    def current_members(self, ctx: StepContext) -> list[Member]:
        """The members the LB host's config balances now."""

    @abstractmethod
    def balancing(self, ctx: StepContext) -> bool:
        """Whether the LB host balances already (False on a new one: nothing to read)."""

    @abstractmethod
    def states(self, ctx: StepContext) -> dict[str, MemberState]:
        """Every member's state, by name."""

    @abstractmethod
    def states_script(self) -> str:
        """A shell command that prints what ``parse_states`` needs: every member's state read
        in one remote call, for a status gathered with other reads in one script."""

    @abstractmethod
    def parse_states(self, text: str) -> dict[str, MemberState]:
        """Every member's state, by name, from ``states_script``'s output; ``StepError`` when
        the LB did not answer."""

    @abstractmethod
    def set_admin(self, ctx: StepContext, member: str, admin: str) -> None:
        """Put ``member`` in ``admin`` state (ready, drain or maint)."""

    def remove(self, ctx: StepContext, names: list[str]) -> None:
        """Balance no more ``names``: the config without them, validated, and a reload. The
        other members keep the state they are in."""
        keep = [m for m in self.current_members(ctx) if m.name not in names]
        step = self.config({ctx.target.name: keep})
        if step.check(ctx):
            step.change(ctx)
