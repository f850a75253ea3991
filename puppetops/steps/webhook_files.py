"""The webhook's files on main: where install_webhook puts them (``WebhookPaths``), and its
inventory of the servers it deploys to without a compiler remove_compiler removes
(``inventory_without``) — so remove_compiler finds and edits what install_webhook wrote
without importing that plan."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

import yaml


@dataclass(frozen=True)
class WebhookPaths:
    """Where the webhook lives on main."""

    home: str = "/opt/puppetops-webhook"
    etc: str = "/etc/puppetops-webhook"
    database: str = "/var/lib/puppetops-webhook/deploys.sqlite3"
    log: str = "/var/log/puppetops-webhook.jsonl"
    output: str = "/var/log/puppetops-webhook.out"  # the process's own stdout and stderr
    pidfile: str = "/run/puppetops-webhook.pid"

    @property
    def state(self) -> str:
        """Where the webhook keeps its deploy history."""
        return self.database.rsplit("/", 1)[0]

    @property
    def venv(self) -> str:
        return f"{self.home}/venv"

    @property
    def wheels(self) -> str:
        return f"{self.home}/wheelhouse"

    @property
    def config(self) -> str:
        return f"{self.etc}/config.yaml"

    @property
    def mermaid_js(self) -> str:
        """Mermaid's renderer for the status page, shipped from the controller's cache."""
        return f"{self.home}/mermaid.min.js"

    @property
    def inventory(self) -> str:
        return f"{self.etc}/inventory.yaml"

    @property
    def secret(self) -> str:
        return f"{self.etc}/secret"

    @property
    def known_hosts(self) -> str:
        """The servers' host keys, as the controller verified them."""
        return f"{self.etc}/known_hosts"

    @property
    def key(self) -> str:
        """The webhook's own SSH private key (made on main, never copied)."""
        return f"{self.etc}/id_ed25519"

    @property
    def command(self) -> str:
        return f"{self.venv}/bin/puppetops webhook --config {self.config}"

    @property
    def hook_command(self) -> str:
        return f"{self.venv}/bin/python -m puppetops.webhook.post_receive --config {self.config}"


PATHS = WebhookPaths()


def inventory_without(text: str, leaving: Iterable[str]) -> str:
    """The webhook's inventory (as install_webhook's ``inventory_text`` wrote it) without the
    targets named ``leaving``, so it deploys to them no more; ``text`` itself when none is in
    it."""
    gone = set(leaving)
    document = yaml.safe_load(text) or {}
    groups = document.get("groups") or []
    kept = [[t for t in g.get("targets") or [] if t.get("name") not in gone] for g in groups]
    if all(len(k) == len(g.get("targets") or []) for k, g in zip(kept, groups)):
        return text
    for group, targets in zip(groups, kept):
        group["targets"] = targets
    header = "".join(line for line in text.splitlines(keepends=True) if line.startswith("#"))
    return header + yaml.safe_dump(document, sort_keys=False)
