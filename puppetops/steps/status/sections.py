"""The reads of a host's status, one ``Section`` each: a shell command and its parser.

Each reads what the host itself knows, from the host: Puppet Server's status API (health of
every service, JVM heap), the deploy records of every environment, the CA's listing and its
certificate and CRL dates, the load balancer's members, PuppetDB's status and nodes, an
agent's last run summary, the webhook's health. TLS is verified against the host's own CA
bundle, the request sent to 127.0.0.1 under the host's certname (``--resolve``).
"""
from __future__ import annotations

import json
import shlex
from datetime import datetime, timezone
from typing import Any

import yaml
from cryptography import x509

from ...errors import StepError
from ...puppet import node
from ...puppet.layout import Layout
from ...target import Target
from ..ca import ca_api
from ..code import deployers
from ..lb import backends, out_records
from ..lb.backend import READY
from .script import Section

SERVER_PORT, PUPPETDB_PORT = 8140, 8081
WEBHOOK_CONFIG = "/etc/puppetops-webhook/config.yaml"  # install_webhook's
ABSENT = "absent"
_SPLIT = "@@puppetops-status-part"


def _curl(layout: Layout, certname: str, port: int, path: str, client_cert: bool = False) -> str:
    ssl = layout.ssldir
    cert = (f" --cert {shlex.quote(f'{ssl}/certs/{certname}.pem')}"
            f" --key {shlex.quote(f'{ssl}/private_keys/{certname}.pem')}" if client_cert else "")
    return (f"curl -sS --max-time 5 --cacert {shlex.quote(f'{ssl}/certs/ca.pem')}{cert} "
            f"--resolve {shlex.quote(f'{certname}:{port}:127.0.0.1')} "
            f"{shlex.quote(f'https://{certname}:{port}{path}')}")


def _json(text: str, what: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        raise StepError(f"{what} did not answer: {text.strip()[:200] or 'no output'}") from None


# -- Puppet Server ---------------------------------------------------------------------------

def server(target: Target, layout: Layout) -> Section:
    """Every service's state from ``/status/v1/services?level=debug`` (also the JVM's heap)."""
    return Section("server", _curl(layout, node.certname(target), SERVER_PORT,
                                   "/status/v1/services?level=debug"), parse_server)


def parse_server(text: str) -> dict[str, Any]:
    services = _json(text, "Puppet Server's status API")
    if not isinstance(services, dict) or not services:
        raise StepError(f"Puppet Server's status API answered {text.strip()[:200]}")
    jvm = ((services.get("status-service") or {}).get("status") or {}) \
        .get("experimental", {}).get("jvm-metrics", {})
    heap = jvm.get("heap-memory") or {}
    return {"services": {name: s.get("state") for name, s in sorted(services.items())},
            "version": (services.get("server") or services.get("master") or {})
            .get("service_version"),
            "heap_used": heap.get("used"), "heap_max": heap.get("max"),
            "uptime_s": round(jvm["up-time-ms"] / 1000) if "up-time-ms" in jvm else None}


# -- deployed code ---------------------------------------------------------------------------

def code(target: Target, layout: Layout) -> Section:
    """Each environment's deploy record (r10k's or g10k's ``signature``), one line each."""
    record = deployers.of(target).record_path(layout, "ENV")
    folder, name = record.split("/ENV/")
    return Section("code", f"for f in {shlex.quote(folder)}/*/{shlex.quote(name)}; do "
                           '[ -f "$f" ] || continue; e=${f%/*}; printf "%s " "${e##*/}"; '
                           'tr -d "\\n" < "$f"; echo; done', parse_code)


def parse_code(text: str) -> dict[str, Any]:
    found = {}
    for line in text.splitlines():
        env, _, record = line.partition(" ")
        deployed = deployers.parse_record(record)
        found[env] = {"commit": deployed.signature if deployed else None,
                      "success": bool(deployed and deployed.success),
                      "finished_at": deployed.finished_at if deployed else ""}
    return found


# -- the CA ----------------------------------------------------------------------------------

def ca(target: Target, layout: Layout) -> Section:
    """The CA's listing of every request and certificate (its API), then its own certificate
    and CRL as they are (PEM), whose dates are read here: no openssl process on the CA."""
    cadir = layout.cadir
    return Section("ca", f"{ca_api.all_statuses_command(layout, node.certname(target))}; "
                         f"echo {_SPLIT}; cat {shlex.quote(cadir + '/ca_crt.pem')}; "
                         f"echo {_SPLIT}; cat {shlex.quote(cadir + '/ca_crl.pem')}", parse_ca)


def parse_ca(text: str) -> dict[str, Any]:
    listing, _, files = text.partition(f"\n{_SPLIT}\n")
    cert_pem, _, crl_pem = files.partition(f"{_SPLIT}\n")
    try:
        expires = x509.load_pem_x509_certificate(cert_pem.encode()).not_valid_after_utc
        next_update = x509.load_pem_x509_crl(crl_pem.encode()).next_update_utc
    except ValueError as exc:
        raise StepError(f"cannot read the CA's certificate or CRL: {exc}: "
                        f"{files.strip()[:200]}") from None
    found: dict[str, Any] = {"ca_cert_expires": expires.isoformat(),
                             "crl_next_update": next_update.isoformat() if next_update else None}
    statuses = ca_api.parse_all_statuses(listing)
    found["pending"] = sorted(({"name": s["name"], "fingerprint": s.get("fingerprint")}
                               for s in statuses if s.get("state") == "requested"),
                              key=lambda s: s["name"])
    found["signed"] = sorted(({"name": s["name"], "expires": _api_date(s.get("not_after"))}
                              for s in statuses if s.get("state") == "signed"),
                             key=lambda s: s["name"])
    return found


def _api_date(text: str | None) -> str | None:
    """The CA API's ``2031-11-28T14:06:48UTC`` as ISO 8601 UTC."""
    if not text:
        return None
    parsed = datetime.strptime(text.replace("UTC", "").replace("Z", ""), "%Y-%m-%dT%H:%M:%S")
    return parsed.replace(tzinfo=timezone.utc).isoformat()


# -- the load balancer -----------------------------------------------------------------------

def lb(target: Target, layout: Layout) -> Section:
    """Every member's state and sessions (the backend's own read), and for a member out of
    load balancing the record of who took it out, why and how it comes back."""
    backend = backends.of(target)

    def parse_lb(text: str) -> dict[str, Any]:
        state_text, _, record_text = text.partition(f"\n{_SPLIT}\n")
        states, records = backend.parse_states(state_text), out_records.parse(record_text)
        members = {}
        for name, s in sorted(states.items()):
            members[name] = {"state": lb_state(s.admin, s.up), "sessions": s.sessions,
                             "detail": s.detail}
            if s.admin != READY:
                members[name]["why"] = out_records.explain(name, s, records.get(name))
        return {"backend": backend.name, "members": members}
    return Section("lb", f"{backend.states_script()}; echo; echo {_SPLIT}; {out_records.READ}",
                   parse_lb)


def lb_state(admin: str, up: bool) -> str:
    """What an operator calls a member's state: MAINT and DRAIN as set, else UP or DOWN."""
    if admin in ("maint", "drain"):
        return admin.upper()
    return "UP" if up else "DOWN"


# -- PuppetDB --------------------------------------------------------------------------------

def puppetdb(target: Target, layout: Layout, required: bool = True) -> Section:
    """PuppetDB's status and its nodes (last report time and status of each), over TLS with
    the host's own certificate. Not ``required`` (main, without a ``puppetdb`` group), it is
    read only when the server stores its data there (its ``puppetdb.conf``), else ``absent``:
    a package installed is not a PuppetDB in use."""
    certname = node.certname(target)
    status = _curl(layout, certname, PUPPETDB_PORT, "/status/v1/services/puppetdb-status", True)
    nodes = _curl(layout, certname, PUPPETDB_PORT, "/pdb/query/v4/nodes", True)
    read = f"{status}; echo; echo {_SPLIT}; {nodes}"
    in_use = shlex.quote(f"{layout.confdir}/puppetdb.conf")
    return Section("puppetdb", read if required else
                   f"if [ -f {in_use} ]; then {read}; else echo {ABSENT}; fi", parse_puppetdb)


def parse_puppetdb(text: str) -> dict[str, Any] | None:
    if text.strip() == ABSENT:
        return None
    status_text, _, nodes_text = text.partition(f"\n{_SPLIT}\n")
    status = _json(status_text, "PuppetDB's status API")
    nodes = _json(nodes_text, "PuppetDB's nodes query")
    return {"state": status.get("state"), "version": status.get("service_version"),
            "nodes": [{"name": n["certname"], "last_report": n.get("report_timestamp"),
                       "status": n.get("latest_report_status")}
                      for n in nodes if not n.get("deactivated")]}


# -- an agent --------------------------------------------------------------------------------

def agent(target: Target, layout: Layout) -> Section:
    """The agent's own record of its last run (``last_run_summary.yaml``)."""
    path = shlex.quote(layout.last_run_summary)
    return Section("agent", f"if [ -f {path} ]; then cat {path}; else echo {ABSENT}; fi",
                   parse_agent)


def parse_agent(text: str) -> dict[str, Any] | None:
    if text.strip() == ABSENT:
        return None
    try:
        summary = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        raise ValueError(f"last_run_summary.yaml does not parse: {exc}") from None
    last = (summary.get("time") or {}).get("last_run")
    resources, events = summary.get("resources") or {}, summary.get("events") or {}
    failed = (resources.get("failed") or 0) + (resources.get("failed_to_restart") or 0) \
        + (events.get("failure") or 0)
    status = "failed" if failed or not resources else \
        "changed" if resources.get("changed") else "unchanged"
    return {"last_report": datetime.fromtimestamp(last, timezone.utc).isoformat()
            if isinstance(last, (int, float)) else None, "status": status}


# -- the webhook -----------------------------------------------------------------------------

def webhook(target: Target, layout: Layout) -> Section:
    """The webhook's ``/health`` on the port its config listens on; ``absent`` without one."""
    conf = shlex.quote(WEBHOOK_CONFIG)
    return Section("webhook", f"if [ -f {conf} ]; then l=$(sed -n 's/^listen: *//p' {conf} | "
                              "tr -d \"'\\\"\"); curl -sS --max-time 3 "
                              "\"http://127.0.0.1:${l##*:}/health\"; else echo "
                              f"{ABSENT}; fi", parse_webhook)


def parse_webhook(text: str) -> dict[str, Any] | None:
    if text.strip() == ABSENT:
        return None
    health = _json(text, "the webhook")
    return {"status": health.get("status"), "deploys": health.get("deploys", {})}
