"""Whether every server serves the same code: the decision deploy_code flushes and drains on.

Open-source Puppet has no file sync (PE's way to keep compilers identical), so after running
the deployer on every server we compare what each one recorded. The reference for an
environment is its branch head when the plan started; a server is *off* for an environment
when its deploy failed, it could not be read, its record says the deploy did not succeed, or
its commit is not the reference, or its Puppet Server does not answer. One off server anywhere makes the whole deploy inconsistent:
then no cache is flushed (a flushed server would start compiling code its peers lack), and
the off servers are the ones to drain. Pure functions, so the rule is tested without hosts.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Mapping

from .deployers import Deployed


@dataclass(frozen=True)
class Position:
    """Where one server is for one environment, and what is wrong with that, if anything."""

    server: str
    environment: str
    commit: str | None
    problem: str | None = None

    @property
    def ok(self) -> bool:
        return self.problem is None

    def describe(self) -> str:
        at = f"at {self.commit[:12]}" if self.commit else "at no commit"
        return f"{self.environment} {at}" + (f" ({self.problem})" if self.problem else "")


@dataclass(frozen=True)
class ConsistencyVerdict:
    positions: tuple[Position, ...]

    @property
    def consistent(self) -> bool:
        return all(p.ok for p in self.positions)

    @property
    def off(self) -> list[str]:
        """Servers off for at least one environment, in the order they were given."""
        return list(dict.fromkeys(p.server for p in self.positions if not p.ok))

    def of(self, server: str) -> list[Position]:
        return [p for p in self.positions if p.server == server]

    def commits(self, server: str) -> dict[str, str | None]:
        return {p.environment: p.commit for p in self.of(server)}

    def report(self) -> str:
        """One line per server: each environment, the commit it is at, what is wrong."""
        servers = dict.fromkeys(p.server for p in self.positions)
        return "\n".join(f"{s}: " + "; ".join(p.describe() for p in self.of(s)) for s in servers)


def position(server: str, environment: str, head: str, record: Deployed | None,
             failure: str | None, not_serving: str | None = None) -> Position:
    commit = record.signature if record else None
    if failure:
        return Position(server, environment, commit, f"deploy failed: {failure}")
    if not_serving:
        return Position(server, environment, commit, not_serving)
    if record is None:
        return Position(server, environment, None, "no deploy record")
    if not record.success:
        return Position(server, environment, commit, "its last deploy did not succeed")
    if commit != head:
        return Position(server, environment, commit, f"expected {head[:12]}")
    return Position(server, environment, commit)


def judge(heads: Mapping[str, str], servers: Iterable[str],
          records: Mapping[str, Mapping[str, Deployed | None]],
          failures: Mapping[tuple[str, str], str],
          unreadable: Mapping[str, str] | None = None,
          not_serving: Mapping[str, str] | None = None) -> ConsistencyVerdict:
    """The verdict over ``servers`` for every environment in ``heads`` (env → branch head).

    ``records[server][env]``: its deploy record (None: none); ``failures[(server, env)]``: why
    its deploy failed; ``unreadable[server]``: why its records could not be read;
    ``not_serving[server]``: why its Puppet Server is not serving.
    """
    unreadable, not_serving = unreadable or {}, not_serving or {}
    positions = []
    for server in servers:
        for env, head in heads.items():
            if server in unreadable:
                positions.append(Position(server, env, None, f"unreadable: {unreadable[server]}"))
                continue
            record = records.get(server, {}).get(env)
            positions.append(position(server, env, head, record, failures.get((server, env)),
                                      not_serving.get(server)))
    return ConsistencyVerdict(tuple(positions))
