"""Where the agents' last reports come from: the seam between status and a report store.

A source gives each agent's last report — its time and status — by certname (``Report``).
Both sources are read in status's one round of reads: PuppetDB's nodes, read on PuppetDB's
host with its own certificate (every node that reports, listed in the inventory or not), and
each agent host's own ``last_run_summary.yaml`` (no PuppetDB needed). ``agent_reports`` takes
PuppetDB's when it answered. Another source — PuppetDB queried from the controller with
pypuppetdb over a CA-signed client certificate — is one more function returning the same
mapping; nothing else changes.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable, Mapping


@dataclass(frozen=True)
class Report:
    certname: str
    last_report: str | None  # ISO 8601; None: never reported
    status: str | None       # failed, changed, unchanged


def puppetdb_reports(nodes: Iterable[Mapping[str, Any]]) -> dict[str, Report]:
    """From the PuppetDB section's nodes (``/pdb/query/v4/nodes``, deactivated ones left
    out when read)."""
    return {n["name"]: Report(n["name"], n.get("last_report"), n.get("status")) for n in nodes}


def summary_reports(agents: Mapping[str, Mapping[str, Any]]) -> dict[str, Report]:
    """From each agent host's reads (certname → its ``agent`` section: None when it never
    ran). Hosts whose summary could not be read are left out: that is their own finding."""
    found = {}
    for certname, summary in agents.items():
        if isinstance(summary, Mapping) and "error" in summary:
            continue
        summary = summary or {}
        found[certname] = Report(certname, summary.get("last_report"), summary.get("status"))
    return found


def agent_reports(agents: Mapping[str, Mapping[str, Any]],
                  puppetdb_nodes: Iterable[Mapping[str, Any]] | None
                  ) -> tuple[str, dict[str, Report]]:
    """(source, certname → Report): PuppetDB's when it answered — plus, as never reported,
    inventory agents it does not know — else the agents' own summaries."""
    if puppetdb_nodes is None:
        return "agents", summary_reports(agents)
    found = puppetdb_reports(puppetdb_nodes)
    for certname in agents:
        found.setdefault(certname, Report(certname, None, None))
    return "puppetdb", found
