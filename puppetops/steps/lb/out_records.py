"""Why a compiler is out of load balancing: one record per member on each LB host, written
*before* puppetops takes the member out and removed once it serves again.

A run can stop anywhere — SIGKILL cannot even be caught — so the LB host itself keeps who
took a member out, why, when and in which run. Every later run that reads an LB's members
reports a member still out for another run as a leftover, with the command that puts it back;
deploy_code puts back exactly the members it drained; rotate_lb_member refuses to re-add one
whose code differs, and says why when it refuses to take another out.

Why is data, not text: ``reason`` says what must hold before the member may serve again —
``code_differs`` (its code differs from its peers' in ``environments``: only a consistent
deploy puts it back), ``maintenance`` (taken out to be worked on: back once healthy) or
``decommissioned`` (being removed for good: remove_compiler finishes the job) — and ``plan``
who took it out, for the operator.

``/var/lib/puppetops/lb-out/<member>.json``, one line::

    {"member": "compiler1.example.com", "who": "ops@admin1", "when": "2026-11-29T08:00:00Z",
     "run": "4f1c2a9b7e01",
     "why": {"plan": "deploy_code", "reason": "code_differs", "environments": ["production"]}}
"""
from __future__ import annotations

import getpass
import json
import shlex
import socket
import time
from dataclasses import dataclass
from typing import Iterator, Mapping

from ...step import StepContext
from .backend import READY, MemberState

DIR = "/var/lib/puppetops/lb-out"
CODE_DIFFERS = "code_differs"  # back only once a deploy leaves its code the same as its peers'
MAINTENANCE = "maintenance"  # back once its Puppet Server is healthy
DECOMMISSIONED = "decommissioned"  # on its way out for good: never back by itself
REASONS = (CODE_DIFFERS, MAINTENANCE, DECOMMISSIONED)
# Records written before ``reason`` was recorded (puppetops before 2026-11-29) hold only the
# plan that wrote them; then deploy_code's drains were the only code_differs ones, and every
# other record meant maintenance. Read for those records only: every record written now
# carries the reason its writer passed (``taken_by``).
REASON_OF_UNREASONED = {"deploy_code": CODE_DIFFERS}


@dataclass(frozen=True)
class OutRecord:
    """Who took a member out (user@controller), when (UTC), in which run, by which plan, and
    why: ``reason`` and, for ``code_differs``, the environments whose code differs."""

    plan: str
    run: str
    who: str
    when: str
    reason: str = MAINTENANCE
    environments: tuple[str, ...] = ()

    def to_json(self, member: str) -> str:
        return json.dumps({"member": member, "who": self.who, "when": self.when, "run": self.run,
                           "why": {"plan": self.plan, "reason": self.reason,
                                   "environments": list(self.environments)}})

    @classmethod
    def from_json(cls, text: str) -> "OutRecord":
        """The record in ``text``; one that cannot be read still says so (plan "unreadable
        record"), so a member out with a damaged record is never silent. A record written
        before reasons were recorded has none: its reason is read from
        ``REASON_OF_UNREASONED``."""
        try:
            data = json.loads(text)
            why = data["why"]
            plan = str(why["plan"])
            reason = why.get("reason") or REASON_OF_UNREASONED.get(plan, MAINTENANCE)
            if reason not in REASONS:
                raise ValueError(reason)
            return cls(plan, str(data["run"]), str(data["who"]), str(data["when"]), reason,
                       tuple(str(e) for e in why.get("environments") or ()))
        except (ValueError, KeyError, TypeError):
            return cls("unreadable record", "?", "?", "?")

    def describe(self) -> str:
        envs = f" ({', '.join(self.environments)} differs)" if self.environments else ""
        return f"taken out by {self.plan}{envs} in run {self.run}, {self.who}, {self.when}"

    def fix(self, member: str) -> str:
        """The command that puts the member back, for the operator."""
        if self.reason == CODE_DIFFERS:
            envs = ",".join(self.environments) or "production"
            return (f"deploy_code puts it back once its code is the same as the others' "
                    f"(invoke deploy-code --env {envs})")
        if self.reason == DECOMMISSIONED:
            return (f"`invoke remove-compiler --targets {member}` finishes removing it (or "
                    f"`invoke lb-ready --targets {member}` keeps it, once healthy)")
        return (f"once its Puppet Server is healthy, `invoke lb-ready --targets {member}` puts "
                "it back")


def taken_by(run_id: str, plan: str, reason: str,
             environments: tuple[str, ...] = ()) -> OutRecord:
    """A record for members ``plan`` takes out now, for ``reason`` (one of ``REASONS``: the
    caller says why; nothing reads it from the plan's name), by this user on this host, in
    run ``run_id``."""
    return OutRecord(plan, run_id, f"{getpass.getuser()}@{socket.gethostname()}",
                     time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), reason, environments)


def path(member: str) -> str:
    return f"{DIR}/{member}.json"  # member: a certname (validated: no slash, no shell syntax)


def write(ctx: StepContext, member: str, record: OutRecord) -> None:
    ctx.run(f"mkdir -p {DIR}")
    ctx.put(record.to_json(member) + "\n", path(member), mode=0o644)


def remove(ctx: StepContext, member: str) -> None:
    ctx.run(f"rm -f {shlex.quote(path(member))}")


READ = f"cd {DIR} 2>/dev/null && grep -H . -- *.json 2>/dev/null || true"
"""Prints every record on the LB host, one ``MEMBER.json:JSON`` line each (``parse``)."""


def read(ctx: StepContext) -> dict[str, OutRecord]:
    """member → its record, for every record on the LB host."""
    return parse(ctx.run(READ).stdout)


def parse(text: str) -> dict[str, OutRecord]:
    """member → its record, from ``READ``'s output."""
    found = {}
    for line in text.splitlines():
        name, _, text = line.partition(":")
        found[name[:-len(".json")]] = OutRecord.from_json(text)
    return found


def leftovers(lb_host: str, states: Mapping[str, MemberState], records: Mapping[str, OutRecord],
              run_id: str) -> Iterator[str]:
    """A warning for each member still out of load balancing on ``lb_host`` by the record of
    another run (an interrupted or failed one): who, why, when, and the fix."""
    for member, record in sorted(records.items()):
        state = states.get(member)
        if state is None or state.admin == READY or record.run == run_id:
            continue
        yield (f"warning: {member} is out of load balancing on {lb_host} ({state.admin}), "
               f"{record.describe()}; {record.fix(member)}")


def explain(member: str, state: MemberState, record: OutRecord | None) -> str:
    """Why a member does not serve, and what to do, for a refusal's message."""
    if state.admin == READY:
        return (f"{member} is not serving: its health check fails ({state.detail or 'down'}); "
                "bring its Puppet Server back first")
    if record is None:
        return (f"{member} is {state.admin} with no puppetops record (taken out by hand?); "
                f"`invoke lb-ready --targets {member}` puts it back once it is healthy")
    return f"{member} is {state.admin}, {record.describe()}; {record.fix(member)}"
