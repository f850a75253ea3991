"""The status document (``puppetops.steps.status``) as people read it: a table, or the
architecture diagram of this fleet in Mermaid, each node coloured by its health.

Both render a plain document (what ``--format json`` prints), so they need nothing but it.
"""
from __future__ import annotations

import re
import sys
from typing import Any

from tabulate import tabulate

from .base import Outputter

COLOURS = {"ok": "fill:#d3f3d3,stroke:#2e7d32,color:#102010",
           "warning": "fill:#fff1c2,stroke:#b8860b,color:#302000",
           "error": "fill:#f8d0d0,stroke:#c62828,color:#300000"}
_RANK = {"ok": 0, "warning": 1, "error": 2}
AGENT_NAMES_SHOWN = 8  # more agents: the node shows their count, comments list them all


def fleet_verdict(document: dict[str, Any]) -> str:
    """The status's headline: HEALTHY or NEEDS ATTENTION, the hosts, the errors and warnings."""
    errors = [f for f in document["findings"] if f["severity"] == "error"]
    warnings = [f for f in document["findings"] if f["severity"] == "warning"]
    counts = ", ".join(filter(None, [errors and f"{len(errors)} error(s)",
                                     warnings and f"{len(warnings)} warning(s)"]))
    word = "HEALTHY" if document["healthy"] else "NEEDS ATTENTION"
    return f"{word}: {len(document['hosts'])} host(s)" + (f", {counts}" if counts else "")


def _mib(value: Any) -> str:
    return f"{value / 2**20:.0f}" if isinstance(value, (int, float)) else "?"


def detail(host: dict[str, Any]) -> str:
    """One cell saying what the host is doing."""
    if "unreachable" in host:
        return f"unreachable: {host['unreachable']}"
    said = []
    server = host.get("server")
    if isinstance(server, dict) and "error" not in server:
        services = server["services"]
        said.append(f"puppetserver {server.get('version') or '?'}: "
                    + ("all services running" if all(s == "running" for s in services.values())
                       else ", ".join(f"{k} {v}" for k, v in services.items() if v != "running"))
                    + f"; heap {_mib(server.get('heap_used'))}/{_mib(server.get('heap_max'))} MiB")
    lb = host.get("lb")
    if isinstance(lb, dict) and "error" not in lb:
        said.append(f"{lb['backend']}: " + ", ".join(
            f"{m.split('.')[0]} {s['state']}" for m, s in lb["members"].items()))
    for name in ("puppetdb", "webhook"):
        value = host.get(name)
        if isinstance(value, dict) and "error" not in value:
            said.append(f"{name} {value.get('state') or value.get('status')}")
    agent = host.get("agent")
    if isinstance(agent, dict) and "error" not in agent:
        said.append(f"last run {agent['status']} at {agent['last_report']}")
    errors = [f"{k}: {v['error']}" for k, v in host.items()
              if isinstance(v, dict) and "error" in v]
    return "; ".join(said + errors)


def ca_summary(ca: dict[str, Any]) -> list[str]:
    """The CA in a line (expiry of its certificate, CRL and the soonest signed one), then
    one line per pending request with its fingerprint."""
    signed = ca["signed"]
    soonest = min(signed, key=lambda c: c["days_left"] if c["days_left"] is not None
                  else float("inf"), default=None)
    return [f"CA on {ca['host']}: its certificate expires in {ca['ca_cert_days_left']} days, "
            f"CRL next update in {ca['crl_days_left']} days; {len(signed)} signed "
            "certificate(s)"
            + (f", the soonest to expire {soonest['name']} in {soonest['days_left']} days"
               if soonest else "")
            + f"; {len(ca['pending'])} pending request(s)",
            *[f"  pending: {r['name']} {r['fingerprint']}" for r in ca["pending"]]]


def table(document: dict[str, Any]) -> str:
    """The human view: hosts, environments, LB members, the CA, agents, what needs attention."""
    parts = [f"Fleet status at {document['checked_at'][:19]}Z: {fleet_verdict(document)}", ""]
    parts.append(tabulate([(name, ", ".join(h["roles"]) or "-", h["health"], detail(h))
                           for name, h in document["hosts"].items()],
                          headers=("host", "roles", "health", "detail")))
    if document["environments"]:
        parts += ["", tabulate(
            [(env, (e["commit"] or "")[:12], "yes" if e["agree"] else "NO",
              ", ".join(f"{s.split('.')[0]}={(c or 'none')[:12]}" for s, c in e["servers"].items()))
             for env, e in document["environments"].items()],
            headers=("environment", "commit", "agree", "servers"))]
    members = [(lb, m, s["state"], s["sessions"], s["detail"])
               for lb, view in document["loadbalancers"].items()
               for m, s in view["members"].items()]
    if members:
        parts += ["", tabulate(members, headers=("load balancer", "member", "state", "sessions",
                                                 "detail"))]
    if document.get("ca"):
        parts += ["", *ca_summary(document["ca"])]
    agents = document["agents"]
    if agents["nodes"]:
        parts += ["", tabulate([(n["name"], n["last_report"] or "never", n["status"] or "-")
                                for n in agents["nodes"]],
                               headers=(f"agent (from {agents['source']})", "last report",
                                        "status"))]
    if document["findings"]:
        parts += ["", "Needs attention:" if not document["healthy"] else "Warnings:"]
        parts += [f"  {f['severity'].upper():8}{f['subject']}: {f['message']}"
                  for f in document["findings"]]
    return "\n".join(parts)


def _label(*lines: str) -> str:
    """A quoted Mermaid label: quotes and angle brackets as entities, lines joined by <br/>."""
    def clean(text: str) -> str:
        text = re.sub(r"\s+", " ", str(text))
        return text.replace("&", "#amp;").replace('"', "#quot;").replace("<", "#lt;") \
            .replace(">", "#gt;")
    return '"' + "<br/>".join(clean(line) for line in lines if line) + '"'


def _worst(healths: list[str]) -> str:
    return max(healths, key=_RANK.get, default="ok")


def mermaid(document: dict[str, Any]) -> str:
    """The architecture of this fleet as a Mermaid flowchart: the control repo, the webhook,
    main, PuppetDB, each compiler, each LB and the agents (their count), each node coloured
    by its health; every inventory host is named (agents beyond a few in comments)."""
    hosts = document["hosts"]
    ids = {name: f"h{i}" for i, name in enumerate(hosts)}
    by_role: dict[str, list[str]] = {}
    for name, h in hosts.items():
        for role in h["roles"] or ["other"]:
            by_role.setdefault(role, []).append(name)
    mains, compilers = by_role.get("main", []), by_role.get("compilers", [])
    lbs, agents = by_role.get("loadbalancers", []), by_role.get("agents", [])
    servers = mains + compilers
    lines = ["flowchart LR", f"  %% puppetops status at {document['checked_at'][:19]}Z: "
                             f"{fleet_verdict(document)}"]
    drawn = set()

    def node(name: str, *label: str, shape: str = "[{}]") -> None:
        drawn.add(name)
        lines.append(f"  {ids[name]}{shape.format(_label(*label))}:::{hosts[name]['health']}")

    if document.get("control_repo"):
        lines.append(f"  repo[({_label('control repo', document['control_repo'])})]:::ok")
    webhook = document.get("webhook")
    if webhook:
        health = "ok" if webhook.get("status") == "ok" else "error"
        lines.append(f"  webhook[{_label('webhook', 'deploys on git push')}]:::{health}")
    for name in mains:
        node(name, name, "Puppet Server + CA")
    pdb = document.get("puppetdb")
    if pdb:
        health = "ok" if pdb.get("state") == "running" else "error"
        if pdb["host"] in mains:
            lines.append(f"  puppetdb[({_label('PuppetDB', 'on ' + pdb['host'])})]:::{health}")
        else:
            node(pdb["host"], pdb["host"], "PuppetDB", shape="[({})]")
    for name in compilers:
        node(name, name, "compiler")
    for name in lbs:
        backend = (hosts[name].get("lb") or {}).get("backend", "load balancer") \
            if isinstance(hosts[name].get("lb"), dict) else "load balancer"
        node(name, name, str(backend))
    agent_nodes = document["agents"]["nodes"]
    agent_names = sorted({n["name"] for n in agent_nodes} | set(agents))
    if agent_names:
        health = _worst([hosts[a]["health"] for a in agents]
                        + ["error" for f in document["findings"]
                           if f["subject"].startswith("agent ")])
        shown = agent_names if len(agent_names) <= AGENT_NAMES_SHOWN else []
        lines.append(f"  agents{{{{{_label(f'{len(agent_names)} agent(s)', *shown)}}}}}:::{health}")
        lines += [f"  %% agent {a}" for a in agent_names if not shown]
    for name in hosts:
        if name not in drawn and name not in agents:
            node(name, name, ", ".join(hosts[name]["roles"]) or "other host")
    pdb_id = None if not pdb else "puppetdb" if pdb["host"] in mains else ids[pdb["host"]]
    if document.get("control_repo"):
        if webhook:
            lines.append("  repo -- git push --> webhook")
        for name in servers:
            lines.append(f"  {'webhook -- deploy' if webhook else 'repo -. r10k'} "
                         f"{'-->' if webhook else '.->'} {ids[name]}")
    if agent_names:
        for lb in lbs:
            lines.append(f"  agents -- 8140 --> {ids[lb]}")
        for name in mains:
            lines.append(f"  agents -. CA .-> {ids[name]}")
        if not lbs:
            lines += [f"  agents --> {ids[name]}" for name in compilers]
    for lb in lbs:
        lines += [f"  {ids[lb]} --> {ids[c]}" for c in compilers]
    if pdb_id:
        lines += [f"  {ids[name]} -. reports .-> {pdb_id}" for name in servers]
    lines += [f"  classDef {health} {style}" for health, style in COLOURS.items()]
    return "\n".join(lines) + "\n"


class MermaidOutput(Outputter):
    """``--format mermaid``: the fleet's diagram on stdout when a run reports a status
    document (progress stays on stderr, as with json)."""

    def __init__(self, *, stdout: Any = None):
        self.out = stdout or sys.stdout

    def status(self, document: dict[str, Any]) -> None:
        self.out.write(mermaid(document))
        self.out.flush()
