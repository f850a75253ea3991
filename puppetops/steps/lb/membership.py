"""Steps on load-balancer hosts that take compilers out of the pool and put them back.

Each takes ``members``: LB target name → the member names (certnames) to act on there, so
one step serves every LB host of a run, HAProxy or nginx (``backends.of``).

The safety rule lives in ``refusal``: a serving member is never taken out when no other
member of that LB would still be serving — taking it out would stop every agent run.

Taking a member out writes why on the LB host first (``out_records``), and putting it back
removes that record once it serves again, so no run — however it ends — leaves a member out
silently.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

from ...errors import StepError
from ...polling import wait_while
from ...step import Step, StepContext
from . import backends, out_records
from .backend import DRAIN, MAINT, READY, MemberState
from .out_records import OutRecord

POLL = 1.0


def _show(states: Mapping[str, MemberState]) -> str:
    return ", ".join(f"{s.name} {s.admin}/{'up' if s.up else 'down'}"
                     + (f" ({s.detail})" if s.detail else "") for s in states.values())


def known(states: Mapping[str, MemberState], names: list[str]) -> None:
    missing = [n for n in names if n not in states]
    if missing:
        raise StepError(f"{', '.join(missing)} not a member here (members: "
                        f"{', '.join(states) or 'none'})")


def refusal(states: Mapping[str, MemberState], names: list[str],
            records: Mapping[str, OutRecord] | None = None) -> str | None:
    """Why taking ``names`` out is refused on this LB, or None when another member serves.
    The message says why each other member is not serving and what to do about it."""
    if not any(states[n].serving for n in names):
        return None  # nothing that serves now is taken out
    others = [s for s in states.values() if s.name not in names]
    if any(s.serving for s in others):
        return None
    why = "; ".join(out_records.explain(s.name, s, (records or {}).get(s.name)) for s in others)
    return (f"refusing to take out {', '.join(names)}: no other member would be serving "
            f"({_show(states)})" + (f". {why}" if why else ""))


@dataclass(frozen=True)
class LbView:
    """An LB host's members and the records of those puppetops took out."""

    states: dict[str, MemberState]
    records: dict[str, OutRecord]

    def leftovers(self, lb_host: str, run_id: str) -> list[str]:
        return list(out_records.leftovers(lb_host, self.states, self.records, run_id))

    def out_for(self, reason: str) -> dict[str, OutRecord]:
        """member → record, for the members out of load balancing here for ``reason``
        (``out_records.CODE_DIFFERS`` or ``MAINTENANCE``)."""
        return {m: r for m, r in self.records.items()
                if r.reason == reason and m in self.states and self.states[m].admin != READY}


def view(ctx: StepContext) -> LbView:
    """For ``run.each`` on LB hosts: what ``LbView`` holds, read now."""
    return LbView(backends.of(ctx.target).states(ctx), out_records.read(ctx))


class _OnMembers(Step):
    def __init__(self, members: Mapping[str, list[str]]):
        super().__init__()
        self.members = members

    def _names(self, ctx: StepContext) -> list[str]:
        return list(self.members.get(ctx.target.name, []))

    def _states(self, ctx: StepContext) -> dict[str, MemberState]:
        states = backends.of(ctx.target).states(ctx)
        known(states, self._names(ctx))
        return states


class MembersOut(_OnMembers):
    """The members are out of load balancing: ``drain`` (no new connections, current ones
    finish, health checks go on) or ``maint`` (checks stop too). ``record`` is written on
    the LB host before each member goes out. A member already further out (maint when drain
    is asked) stays so."""

    def __init__(self, members: Mapping[str, list[str]], admin: str = DRAIN,
                 record: OutRecord | None = None):
        if admin not in (DRAIN, MAINT):
            raise ValueError("admin must be drain or maint")
        super().__init__(members)
        self.admin, self.record = admin, record
        self.name = f"LB {admin}"

    def _todo(self, states: Mapping[str, MemberState], names: list[str]) -> list[str]:
        done = {DRAIN: (DRAIN, MAINT), MAINT: (MAINT,)}[self.admin]
        return [n for n in names if states[n].admin not in done]

    def check(self, ctx: StepContext) -> str | None:
        todo = self._todo(self._states(ctx), self._names(ctx))
        return f"{self.admin} {', '.join(todo)}" if todo else None

    def change(self, ctx: StepContext) -> None:
        states, names = self._states(ctx), self._names(ctx)
        refused = refusal(states, names, out_records.read(ctx))
        if refused:
            raise StepError(refused)
        for name in self._todo(states, names):
            if self.record:
                out_records.write(ctx, name, self.record)
            backends.of(ctx.target).set_admin(ctx, name, self.admin)


class MembersIdle(_OnMembers):
    """The members hold no sessions any more; waits up to ``wait`` seconds (size it to a
    catalog compile: minutes)."""

    name = "LB sessions drained"

    def __init__(self, members: Mapping[str, list[str]], wait: float = 600.0):
        super().__init__(members)
        self.wait = wait
        self.timeout = wait + 60

    def _busy(self, ctx: StepContext) -> dict[str, int]:
        states = self._states(ctx)
        return {n: states[n].sessions for n in self._names(ctx) if states[n].sessions}

    def check(self, ctx: StepContext) -> str | None:
        busy = self._busy(ctx)
        return ("wait for " + ", ".join(f"{n} ({s} session(s))" for n, s in busy.items())
                if busy else None)

    def change(self, ctx: StepContext) -> None:
        busy = wait_while(lambda: self._busy(ctx), self.wait, POLL, sleep=ctx.sleep)
        if busy:
            raise StepError(f"still busy after {self.wait:.0f}s: "
                            + ", ".join(f"{n} ({s} session(s))" for n, s in busy.items()))

    def verify(self, ctx: StepContext) -> None:
        """``change`` returns only once they are idle."""


class MembersReady(_OnMembers):
    """The members are back in load balancing and serving (HAProxy: running, its health
    check passing) within ``wait`` seconds, and their records are gone. One that does not
    come up is put in maintenance again — never left half in — with its record kept (or
    ``record`` written when it had none), and the step fails."""

    name = "LB ready"

    def __init__(self, members: Mapping[str, list[str]], wait: float = 300.0,
                 record: OutRecord | None = None):
        super().__init__(members)
        self.wait, self.record = wait, record
        self.timeout = wait + 60

    def _waiting(self, ctx: StepContext) -> dict[str, MemberState]:
        states = self._states(ctx)
        return {n: states[n] for n in self._names(ctx) if not states[n].serving}

    def _recorded(self, ctx: StepContext) -> dict[str, OutRecord]:
        records = out_records.read(ctx)
        return {n: records[n] for n in self._names(ctx) if n in records}

    def check(self, ctx: StepContext) -> str | None:
        waiting, recorded = self._waiting(ctx), self._recorded(ctx)
        todo = [f"put back {_show(waiting)}"] if waiting else []
        stale = sorted(set(recorded) - set(waiting))
        todo += [f"remove the record of {', '.join(stale)} (serving)"] if stale else []
        return "; ".join(todo) or None

    def change(self, ctx: StepContext) -> None:
        for name, state in self._waiting(ctx).items():
            if state.admin != READY:
                backends.of(ctx.target).set_admin(ctx, name, READY)
        waiting = wait_while(lambda: self._waiting(ctx), self.wait, POLL, sleep=ctx.sleep)
        if waiting:
            recorded = self._recorded(ctx)
            for name in waiting:
                if name not in recorded and self.record:
                    out_records.write(ctx, name, self.record)
                backends.of(ctx.target).set_admin(ctx, name, MAINT)
            raise StepError(f"not serving {self.wait:.0f}s after being set ready, put back "
                            f"in maintenance: {_show(waiting)}")
        for name in self._recorded(ctx):
            out_records.remove(ctx, name)


class MembersRemoved(_OnMembers):
    """The members are gone from the LB host's config (validated, then a reload) and their
    records with them. Take them out first (``MembersOut`` to maint, ``MembersIdle``): a
    member still serving is refused here, so no connection is cut by the reload."""

    name = "LB remove"

    def _present(self, ctx: StepContext) -> tuple[list[str], list[str]]:
        """(members still configured, members with a record left) among ours."""
        configured = {m.name for m in backends.of(ctx.target).current_members(ctx)}
        records = out_records.read(ctx)
        names = self._names(ctx)
        return [n for n in names if n in configured], [n for n in names if n in records]

    def check(self, ctx: StepContext) -> str | None:
        configured, recorded = self._present(ctx)
        todo = [f"remove {', '.join(configured)} from the config"] if configured else []
        stale = [n for n in recorded if n not in configured]
        todo += [f"remove the record of {', '.join(stale)}"] if stale else []
        return "; ".join(todo) or None

    def change(self, ctx: StepContext) -> None:
        configured, recorded = self._present(ctx)
        if configured:
            states = backends.of(ctx.target).states(ctx)
            serving = [n for n in configured if n in states and states[n].admin == READY]
            if serving:
                raise StepError(f"not removing {', '.join(serving)}: still in load balancing "
                                "(take it out first)")
            backends.of(ctx.target).remove(ctx, configured)
        for name in recorded:
            out_records.remove(ctx, name)
