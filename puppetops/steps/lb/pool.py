"""The load balancer in front of the compilers: its members and which backend runs it.

Agents reach the compilers through it under ``lb_name`` on port 8140, at layer 4 only (TLS
passes through, so client certificates reach Puppet Server; the compilers' certificates carry
the LB's name). Which backend balances them is chosen per LB host (``backends``).
"""
from __future__ import annotations

from dataclasses import dataclass

from ...puppet import names, node
from ...target import Target

PORT = 8140


@dataclass(frozen=True, order=True)
class Member:
    """One compiler behind the LB: its name there (its certname) and where to reach it."""

    name: str
    address: str
    port: int = PORT

    def __post_init__(self) -> None:
        names.certname(self.name)
        names.certname(self.address)  # a DNS name or dotted IPv4: both pass this rule


def member(compiler: Target) -> Member:
    """A compiler as an LB member, reached by its certname (which its certificate matches)."""
    name = node.certname(compiler)
    return Member(name, str(compiler.vars.get("lb_member_address") or name))

