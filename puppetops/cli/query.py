"""``--query 'PQL'``: a command's targets from PuppetDB, as Bolt's ``--query``.

The query runs on the PuppetDB host itself (the ``puppetdb`` group's, else main), over SSH as
the inventory says, and from there over HTTPS with that host's own Puppet certificate — the
one install_puppetdb puts on PuppetDB's allow-list; never plain HTTP, and the controller
needs no certificate of its own. A query PuppetDB refuses is a usage error showing PuppetDB's
message (exit 2). Every result must carry a ``certname`` (``nodes[certname] { ... }``).

Certnames the inventory has are its targets, with their config; the others become targets of
their own name with the ``all`` group's config (``ssh://NAME``), as Bolt does.
"""
from __future__ import annotations

import json
import shlex

from ..errors import PuppetopsError, UsageError
from ..inventory import Inventory
from ..puppet import names, node, puppetdb
from ..steps.puppetdb import host as pdb_host
from ..target import Target
from ..transport import ConnectionPool

QUERY_PATH = "/pdb/query/v4"


def puppetdb_host(inventory: Inventory) -> Target:
    """The ``puppetdb`` group's one host, else the ``main`` group's: the rule the plans follow
    (``steps.puppetdb.host``), so the query asks the PuppetDB they installed."""
    try:
        return pdb_host.puppetdb_host(inventory)
    except UsageError as exc:
        raise UsageError(f"--query: {exc}") from None


def query_command(host: Target, pql: str) -> str:
    """curl on ``host`` asking its PuppetDB, with its own certificate; the HTTP status last."""
    certname = node.certname(host)
    ssl = puppetdb.host_ssl(node.layout(host), certname)
    url = f"{puppetdb.server_url(certname)}{QUERY_PATH}"
    return (f"curl -sS -G --max-time 60 --cacert {shlex.quote(ssl.ca)} "
            f"--cert {shlex.quote(ssl.cert)} --key {shlex.quote(ssl.key)} "
            f"--data-urlencode {shlex.quote('query=' + pql)} -w '\\n%{{http_code}}' "
            f"{shlex.quote(url)}")


def certnames(answer: str, code: str) -> list[str]:
    """The certnames in PuppetDB's answer (body, HTTP status), in its order, once each."""
    if code == "400":  # PuppetDB's message, on one line (it points at the column with a ^)
        said = [line.strip() for line in answer.splitlines() if line.strip().strip("^")]
        raise UsageError(f"--query: PuppetDB: {' '.join(said)}")
    if code != "200":
        raise PuppetopsError(f"--query: PuppetDB answered HTTP {code}: {answer.strip()[:300]}")
    try:
        rows = json.loads(answer)
    except ValueError:
        raise PuppetopsError(f"--query: PuppetDB's answer is not JSON: {answer[:200]}") from None
    if not isinstance(rows, list) or not all(isinstance(r, dict) and "certname" in r
                                             for r in rows):
        raise UsageError("--query: every result needs a certname; select it, e.g. "
                         "'nodes[certname] { facts.os.family = \"Debian\" }'")
    found = list(dict.fromkeys(str(r["certname"]) for r in rows))
    try:  # they become a target spec: no comma, glob or URI may sneak in
        return names.certnames(found)
    except UsageError as exc:
        raise UsageError(f"--query: PuppetDB answered a name puppetops will not target: "
                         f"{exc}") from None


def resolve(inventory: Inventory, pql: str, given: str | None, label: str) -> str:
    """The target spec ``--query`` (intersected with ``given``, when given) selects."""
    spec = as_spec(inventory, query_certnames(inventory, pql))
    chosen = spec.split(",") if spec else []
    if given is not None:
        wanted = {t.name for t in inventory.select_some(given, label)}
        chosen = [name for name in chosen if name in wanted]
    if not chosen:
        raise UsageError(f"--query {pql!r} selects no target"
                         + (f" among {label} {given!r}" if given is not None else ""))
    return ",".join(chosen)


def query_certnames(inventory: Inventory, pql: str) -> list[str]:
    """Ask PuppetDB for ``pql`` from its host; the certnames it answers."""
    if not pql.strip():
        raise UsageError("--query: empty query")
    host = puppetdb_host(inventory)
    with ConnectionPool() as pool:
        pool.check([host])
        out = pool.get(host).run(query_command(host, pql))
    body, _, code = out.stdout.rstrip("\n").rpartition("\n")
    if not out.ok and not code.isdigit():
        raise PuppetopsError(f"--query: curl on {host.name} exited {out.exit_code}: "
                             f"{out.stderr.strip()[-300:]}")
    return certnames(body, code.strip())


def as_spec(inventory: Inventory, names: list[str]) -> str:
    """A target spec for these certnames: the inventory's target where it has one (by name,
    alias or certname var), else an ad-hoc ``ssh://NAME`` target."""
    known = {}
    for target in inventory.targets:
        for key in (target.name, *target.aliases, str(target.vars.get("certname") or "")):
            known.setdefault(key, target.name)
    return ",".join(known.get(name) or f"ssh://{name}" for name in names)
