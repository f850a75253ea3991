"""Is the infrastructure healthy? Pure rules over what ``gather`` read, so they are tested
without hosts.

The judgement is a list of findings, each an error (something is broken or about to be:
exit 1) or a warning (worth a look, not an outage: exit 0), naming its subject — a host, an
environment, a certificate — and the hosts it colours in the picture. The status document
holds every host of the inventory with its health (the worst of its findings), so the JSON
and the diagram name them all.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any, Iterable, Mapping

from .gather import AGENTS, COMPILERS, MAIN
from .reports import agent_reports

OK, WARNING, ERROR = "ok", "warning", "error"
_RANK = {OK: 0, WARNING: 1, ERROR: 2}


@dataclass(frozen=True)
class Thresholds:
    """When a date or a silence needs attention. Puppetboard calls a node unreported after
    2 hours (4 runs at the agent's default 30-minute interval); a CA certificate or CRL
    running out is a classic outage, so 90 days' warning and an error at 30."""

    warn_days: int = 90
    error_days: int = 30
    unreported_hours: float = 2.0


@dataclass(frozen=True)
class StatusFinding:
    severity: str  # error or warning
    subject: str   # what needs attention: a host, "environment production", a certificate
    message: str
    hosts: tuple[str, ...] = field(default=())  # the inventory hosts it makes unhealthy

    def line(self) -> str:
        return f"{self.subject}: {self.message}"


def assess(hosts: Mapping[str, dict[str, Any]], unreachable: Mapping[str, str], *,
           now: datetime, thresholds: Thresholds = Thresholds(),
           control_repo: str | None = None,
           roles: Mapping[str, list[str]] | None = None) -> dict[str, Any]:
    """The status document from each reachable host's reads (``hosts``: name → what
    ``gather.reader`` returned) and the others' errors (``unreachable``: name → why);
    ``roles``: what the inventory makes each host, so one that did not answer is still
    shown (and drawn) as what it is."""
    findings: list[StatusFinding] = []
    findings += [StatusFinding(ERROR, name, f"unreachable: {why}", (name,))
                 for name, why in unreachable.items()]
    findings += _sections_unread(hosts)
    findings += _servers(hosts)
    environments, code_findings = _environments(hosts)
    findings += code_findings
    ca, ca_findings = _ca(hosts, now, thresholds)
    findings += ca_findings
    findings += _loadbalancers(hosts)
    puppetdb, pdb_findings = _puppetdb(hosts)
    findings += pdb_findings
    agents, agent_findings = _agents(hosts, puppetdb, now, thresholds)
    findings += agent_findings
    webhook = next((h["webhook"] for h in hosts.values() if _read(h, "webhook")), None)
    if webhook and webhook.get("status") != "ok":
        findings.append(StatusFinding(ERROR, "webhook", f"its /health says {webhook.get('status')}",
                                _with(hosts, "webhook")))
    document_hosts = {}
    for name in [*hosts, *unreachable]:
        mine = [f for f in findings if name in f.hosts]
        worst = max((f.severity for f in mine), key=_RANK.get, default=OK)
        entry = dict(hosts.get(name) or {"roles": list((roles or {}).get(name, [])),
                                         "unreachable": unreachable[name]})
        document_hosts[name] = {**entry, "health": worst}
    return {
        "healthy": not any(f.severity == ERROR for f in findings),
        "checked_at": now.isoformat(),
        "thresholds": asdict(thresholds),
        "control_repo": control_repo,
        "hosts": document_hosts,
        "environments": environments,
        "loadbalancers": {n: h["lb"] for n, h in hosts.items() if _read(h, "lb")},
        "ca": ca,
        "puppetdb": puppetdb,
        "webhook": webhook,
        "agents": agents,
        "findings": [asdict(f) for f in findings],
    }


def _read(host: dict[str, Any], section: str) -> bool:
    """The host has ``section`` and it was read (present, not an error)."""
    value = host.get(section)
    return isinstance(value, dict) and "error" not in value


def _with(hosts: Mapping[str, dict[str, Any]], section: str) -> tuple[str, ...]:
    return tuple(n for n, h in hosts.items() if h.get(section) is not None)


def _role(hosts: Mapping[str, dict[str, Any]], role: str) -> list[str]:
    return [n for n, h in hosts.items() if role in h.get("roles", ())]


def _sections_unread(hosts: Mapping[str, dict[str, Any]]) -> list[StatusFinding]:
    what = {"server": "Puppet Server not answering", "code": "deploy records unreadable",
            "ca": "the CA not answering", "lb": "load balancer not answering",
            "puppetdb": "PuppetDB not answering", "agent": "last run summary unreadable",
            "webhook": "the webhook not answering"}
    return [StatusFinding(ERROR, name, f"{what[section]}: {value['error']}", (name,))
            for name, h in hosts.items() for section, value in h.items()
            if section in what and isinstance(value, dict) and "error" in value]


def _servers(hosts: Mapping[str, dict[str, Any]]) -> list[StatusFinding]:
    found = []
    for name, h in hosts.items():
        if _read(h, "server"):
            down = {s: state for s, state in h["server"]["services"].items() if state != "running"}
            if down:
                said = ", ".join(f"{s} {state}" for s, state in down.items())
                found.append(StatusFinding(ERROR, name, f"Puppet Server services not running: {said}",
                                     (name,)))
    return found


def _environments(hosts: Mapping[str, dict[str, Any]]) -> tuple[dict[str, Any], list[StatusFinding]]:
    """Per environment, each server's commit; they agree when all are at the same commit
    with a successful deploy. The odd ones out are named against main's commit (main's code
    is what the compilers follow), or the most common one without main."""
    servers = [n for n in [*_role(hosts, MAIN), *_role(hosts, COMPILERS)]
               if _read(hosts[n], "code")]
    names = sorted({env for n in servers for env in hosts[n]["code"]})
    environments, found = {}, []
    mains = set(_role(hosts, MAIN))
    for env in names:
        at = {n: hosts[n]["code"].get(env) or {} for n in servers}
        commits = {n: r.get("commit") for n, r in at.items()}
        failed = sorted(n for n, r in at.items() if r and not r.get("success"))
        common = Counter(c for c in commits.values() if c).most_common(1)
        on_main = next((commits[n] for n in servers if n in mains and commits[n]), None)
        reference = on_main or (common[0][0] if common else None)
        off = sorted(n for n, c in commits.items() if c != reference) if reference else []
        agree = not off and not failed
        environments[env] = {"servers": commits, "agree": agree, "commit": reference}
        if off:
            found.append(StatusFinding(ERROR, f"environment {env}", "servers disagree: " + ", ".join(
                f"{n} at {(commits[n] or 'nothing')[:12]}" for n in off)
                + f" ({'main' if on_main else 'the others'} at {reference[:12]})", tuple(off)))
        if failed:
            found.append(StatusFinding(ERROR, f"environment {env}", "last deploy failed on "
                                 + ", ".join(failed), tuple(failed)))
    return environments, found


def days_left(when: str | None, now: datetime) -> float | None:
    if not when:
        return None
    return round((datetime.fromisoformat(when) - now) / timedelta(days=1), 1)


def _expiry(subject: str, when: str | None, now: datetime, limits: Thresholds,
            hosts: tuple[str, ...], what: tuple[str, str] = ("expires", "expired")
            ) -> list[StatusFinding]:
    """A finding when ``when`` is under the warning threshold (an error under the error's)."""
    left = days_left(when, now)
    if left is None or left >= limits.warn_days:
        return []
    severity = ERROR if left < limits.error_days else WARNING
    said = f"{what[0]} in {left:.0f} days ({when})" if left >= 0 else \
        f"{what[1]} {-left:.0f} days ago ({when})"
    return [StatusFinding(severity, subject, said, hosts)]


def _ca(hosts: Mapping[str, dict[str, Any]], now: datetime,
        limits: Thresholds) -> tuple[dict[str, Any] | None, list[StatusFinding]]:
    """The CA's pending requests (a warning each: a node waits to be signed) and the expiry
    of its certificate, its CRL and every signed certificate."""
    host = next((n for n, h in hosts.items() if _read(h, "ca")), None)
    if host is None:
        return None, []
    ca = hosts[host]["ca"]
    found = _expiry("CA certificate", ca.get("ca_cert_expires"), now, limits, (host,))
    found += _expiry("CA CRL", ca.get("crl_next_update"), now, limits, (host,),
                     ("next update due", "next update was due"))
    by_certname = {h.get("certname", n): n for n, h in hosts.items()}
    signed = []
    for cert in ca.get("signed", []):
        signed.append({**cert, "days_left": days_left(cert.get("expires"), now)})
        owner = by_certname.get(cert["name"])
        found += _expiry(f"certificate {cert['name']}", cert.get("expires"), now, limits,
                         (owner,) if owner else (host,))
    for request in ca.get("pending", []):
        found.append(StatusFinding(WARNING, f"certificate request {request['name']}",
                             f"pending on the CA (fingerprint {request.get('fingerprint')})",
                             (host,)))
    return {"host": host, **ca, "signed": signed,
            "ca_cert_days_left": days_left(ca.get("ca_cert_expires"), now),
            "crl_days_left": days_left(ca.get("crl_next_update"), now)}, found


def _loadbalancers(hosts: Mapping[str, dict[str, Any]]) -> list[StatusFinding]:
    """A member DOWN is an error of that compiler (agents sent to the LB are not served by
    it); MAINT and DRAIN are an operator's choice, a warning; no member UP is the LB's error,
    and so is a compiler of the inventory it does not balance."""
    found = []
    compilers = {h.get("certname", n): n for n, h in hosts.items() if COMPILERS in h["roles"]}
    for lb, h in hosts.items():
        if not _read(h, "lb"):
            continue
        members = h["lb"]["members"]
        for member, state in members.items():
            owner = compilers.get(member)
            if state["state"] == "DOWN":
                found.append(StatusFinding(ERROR, lb, f"member {member} is DOWN ({state['detail']})",
                                     (lb, owner) if owner else (lb,)))
            elif state["state"] in ("MAINT", "DRAIN"):
                found.append(StatusFinding(WARNING, lb, f"member {member} is in {state['state']}"
                                     + (f": {state['why']}" if state.get("why") else ""),
                                     (lb,)))
        if not any(s["state"] == "UP" for s in members.values()):
            found.append(StatusFinding(ERROR, lb, "no member is UP: agents cannot compile", (lb,)))
        missing = sorted(set(compilers) - set(members))
        if missing:
            found.append(StatusFinding(ERROR, lb, f"does not balance {', '.join(missing)}", (lb,)))
    return found


def _puppetdb(hosts: Mapping[str, dict[str, Any]]) -> tuple[dict[str, Any] | None, list[StatusFinding]]:
    host = next((n for n, h in hosts.items() if _read(h, "puppetdb")), None)
    if host is None:
        return None, []
    pdb = hosts[host]["puppetdb"]
    found = [] if pdb.get("state") == "running" else \
        [StatusFinding(ERROR, host, f"PuppetDB is {pdb.get('state')}", (host,))]
    return {"host": host, "state": pdb.get("state"), "version": pdb.get("version")}, found


def _agents(hosts: Mapping[str, dict[str, Any]], puppetdb: dict[str, Any] | None,
            now: datetime, limits: Thresholds) -> tuple[dict[str, Any], list[StatusFinding]]:
    """Each agent's last report and its status (``reports``: PuppetDB's when it is there,
    else each agent's own summary). A failed last run, none within ``unreported_hours`` or
    none at all needs attention. Nodes PuppetDB knows as servers are not agents here."""
    by_certname = {h.get("certname", n): n for n, h in hosts.items()}
    agents = {hosts[n].get("certname", n): hosts[n].get("agent") for n in _role(hosts, AGENTS)}
    nodes = hosts[puppetdb["host"]]["puppetdb"]["nodes"] if puppetdb else None
    source, found_reports = agent_reports(agents, nodes)
    found, listed = [], []
    window = timedelta(hours=limits.unreported_hours)
    for certname, report in sorted(found_reports.items()):
        owner = by_certname.get(certname)
        if owner is not None and AGENTS not in hosts[owner]["roles"]:
            continue  # main and the compilers report to PuppetDB too
        marks, last = ((owner,) if owner else ()), report.last_report
        if last is None:
            found.append(StatusFinding(ERROR, f"agent {certname}", "has never reported", marks))
        elif now - datetime.fromisoformat(last.replace("Z", "+00:00")) > window:
            found.append(StatusFinding(ERROR, f"agent {certname}", f"has not reported for "
                                 f"{limits.unreported_hours:g} hours (last {last})", marks))
        if report.status == "failed":
            found.append(StatusFinding(ERROR, f"agent {certname}", f"its last run failed ({last})",
                                 marks))
        listed.append({"name": certname, "last_report": last, "status": report.status})
    return {"source": source, "nodes": listed}, found


@dataclass(frozen=True)
class FleetStatus:
    """A plan's answer: the status document, ``ok`` when nothing is an error."""

    document: dict[str, Any]

    @property
    def ok(self) -> bool:
        return bool(self.document["healthy"])

    def attention(self, severity: str = ERROR) -> list[str]:
        """``subject: message`` of each finding of ``severity``, in the document's order."""
        return [f"{f['subject']}: {f['message']}" for f in self.document["findings"]
                if f["severity"] == severity]


def judge(found: Iterable[tuple[str, bool, Any]], *, now: datetime,
          thresholds: Thresholds = Thresholds(), control_repo: str | None = None,
          roles: Mapping[str, list[str]] | None = None) -> FleetStatus:
    """``FleetStatus`` from each target's (name, read ok, its reads or why not)."""
    hosts, unreachable = {}, {}
    for name, ok, value in found:
        if ok:
            hosts[name] = value
        else:
            unreachable[name] = value
    return FleetStatus(assess(hosts, unreachable, now=now, thresholds=thresholds,
                              control_repo=control_repo, roles=roles))
