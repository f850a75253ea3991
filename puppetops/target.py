"""A resolved inventory target: everything needed to connect to and describe one host."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .secrets import MASK


@dataclass
class Target:
    """One host, with its inventory data already merged by Bolt's precedence rules.

    ``config`` is the full merged config tree (``{"transport": ..., "ssh": {...}, "local": {...}}``);
    ``transport_config`` is the part for this target's transport. ``host``/``port``/``user`` are the
    effective values (URI beats config). Secrets such as a sudo password are never stored here:
    ``config`` keeps only the reference (e.g. ``{"_plugin": "env_var", "var": "NAME"}``).
    """

    name: str
    transport: str = "ssh"
    uri: str | None = None
    host: str | None = None
    port: int | None = None
    user: str | None = None
    aliases: list[str] = field(default_factory=list)
    groups: list[str] = field(default_factory=lambda: ["all"])
    config: dict[str, Any] = field(default_factory=dict)
    vars: dict[str, Any] = field(default_factory=dict)
    facts: dict[str, Any] = field(default_factory=dict)
    features: set[str] = field(default_factory=set)

    @property
    def transport_config(self) -> dict[str, Any]:
        return self.config.get(self.transport, {}) or {}

    def __str__(self) -> str:
        return self.name

    def __hash__(self) -> int:
        return hash(self.name)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Target) and other.name == self.name

    def describe(self) -> dict[str, Any]:
        """The inventory JSON view of this target (``invoke inventory --format json``)."""
        return {
            "uri": self.uri,
            "host": self.host,
            "port": self.port,
            "user": self.user,
            "transport": self.transport,
            "groups": sorted(self.groups),
            "vars": self.vars,
            "facts": self.facts,
            "config": _passwords_masked(self.config),
        }


def _passwords_masked(config: dict[str, Any]) -> dict[str, Any]:
    """``config`` with literal passwords masked. puppetops never reads one from the inventory,
    but an inventory shared with Bolt may hold some (``winrm: {password: ...}``), and showing
    the inventory must not print them."""
    return {key: {option: MASK if "password" in option and isinstance(value, str) else value
                  for option, value in section.items()} if isinstance(section, dict) else section
            for key, section in config.items()}
