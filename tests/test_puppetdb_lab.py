"""PuppetDB on the session lab, as the demo installed it (bootstrap_ca --puppetdb, then
add_compiler for each compiler, enroll_agent, agent runs through the LB).

Queries go from the controller to main's PuppetDB over HTTPS with main's own certificate (on
the allow-list, signed by the lab's CA), through pypuppetdb; PuppetDB's certificate is
checked against the CA and main's certname. Never plain HTTP from outside the host.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from pypuppetdb import connect
from requests.adapters import HTTPAdapter

from puppetops.puppet import puppetdb
from puppetops.puppet.layout import LAYOUTS

from helpers import cli

pytestmark = pytest.mark.lab

LAYOUT = LAYOUTS["debian"]
PDB = puppetdb.layout_of(LAYOUT)


class _Certname(HTTPAdapter):
    """Checks the server's certificate for ``certname`` while connecting to its address (the
    controller does not resolve the lab's names)."""

    def __init__(self, certname: str):
        self.certname = certname
        super().__init__()

    def init_poolmanager(self, *args, **kwargs):
        super().init_poolmanager(*args, assert_hostname=self.certname,
                                 server_hostname=self.certname, **kwargs)


def fqdn(infra, short: str) -> str:
    return infra.lab.host(short).fqdn


@pytest.fixture(scope="module")
def pdb(infrastructure, tmp_path_factory):
    main = infrastructure.lab.host("main")
    folder = tmp_path_factory.mktemp("puppetdb-client")
    ssl = puppetdb.host_ssl(LAYOUT, main.fqdn)
    paths = {}
    for name, remote in (("key", ssl.key), ("cert", ssl.cert), ("ca", ssl.ca)):
        paths[name] = folder / f"{name}.pem"
        paths[name].write_text(infrastructure.ssh("main", f"cat {remote}"))
        os.chmod(paths[name], 0o600)
    api = connect(host=main.address, port=puppetdb.PORT, ssl_verify=str(paths["ca"]),
                  ssl_key=str(paths["key"]), ssl_cert=str(paths["cert"]), timeout=30)
    api.session.mount("https://", _Certname(main.fqdn))
    api.session.headers["Host"] = f"{main.fqdn}:{puppetdb.PORT}"  # Jetty: Host must match SNI
    yield api
    api.disconnect()


def test_an_agent_runs_report_facts_and_catalog_are_in_puppetdb(infrastructure, pdb):
    agent = fqdn(infrastructure, "agent1")
    compilers = {fqdn(infrastructure, c) for c in ("compiler1", "compiler2")}
    assert {n.name for n in pdb.nodes()} >= {agent, fqdn(infrastructure, "agent2")}
    facts = {f.name: f.value for f in pdb.facts(query=f'["=", "certname", "{agent}"]')}
    assert facts["networking"]["fqdn"] == agent and facts["clientcert"] == agent
    catalog = pdb.catalog(agent)
    titles = {(r.type_, r.name) for r in catalog.resources.values()}
    assert ("File", "/etc/puppetops-motd") in titles
    # compiled behind the load balancer: a compiler stored it, through its own terminus and
    # its place on the allow-list (add_compiler's part)
    stored = list(pdb.pql(f'catalogs[producer] {{ certname = "{agent}" }}'))
    assert stored and stored[0]["producer"] in compilers
    reports = list(pdb.pql(f'reports[producer, status] {{ certname = "{agent}" }}'))
    assert any(r["producer"] in compilers and r["status"] in ("changed", "unchanged")
               for r in reports), reports


def test_the_allow_list_holds_main_and_every_compiler_and_the_password_file_is_private(
        infrastructure):
    names = puppetdb.allowlist_names(infrastructure.ssh("main", f"cat {PDB.allowlist}"))
    assert sorted(names) == sorted(fqdn(infrastructure, h) for h in ("main", "compiler1", "compiler2"))
    assert infrastructure.ssh("main", f"stat -c '%a %U' {PDB.database_ini}").split() == \
        ["600", "puppetdb"]
    for server in ("main", "compiler1", "compiler2"):
        conf = infrastructure.ssh(server, f"cat {LAYOUT.puppet_conf}")
        assert "storeconfigs_backend = puppetdb" in conf and "reports = store,puppetdb" in conf


def _install(infrastructure, tmp_path: Path, *extra: str):
    log = tmp_path / f"run{len(list(tmp_path.iterdir()))}.jsonl"
    done = cli("install-puppetdb", "-i", str(infrastructure.lab.inventory), "--format", "json",
               "--log-file", str(log), *extra, timeout=900)
    return done, json.loads(done.stdout), log.read_text()


def _per_target(document) -> dict[str, tuple[str, str]]:
    """target → (changed | unchanged | failed, what its changed steps said), over every step."""
    found: dict[str, tuple[str, str]] = {}
    for results in document["steps"]:
        for r in results["results"]:
            status, said = found.get(r["target"], ("unchanged", ""))
            if r["status"] in ("failed", "unreachable"):
                status = "failed"
            elif r["status"] == "changed" and status != "failed":
                status, said = "changed", f"{said}; {results['name']}: {r['message']}"
            found[r["target"]] = (status, said)
    return found


def _statuses(document) -> dict[str, str]:
    return {target: status for target, (status, _) in _per_target(document).items()}


def test_install_puppetdb_again_changes_nothing_and_never_shows_the_password(infrastructure,
                                                                             tmp_path):
    done, document, log = _install(infrastructure, tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert set(_statuses(document).values()) == {"unchanged"}, _per_target(document)
    password = puppetdb.database_password(infrastructure.ssh("main", f"cat {PDB.database_ini}"))
    assert password and len(password) >= 32
    for text in (done.stdout, done.stderr, log):
        assert password not in text


def test_noop_says_what_would_change_and_a_run_repairs_it(infrastructure, tmp_path):
    """A compiler taken off the allow-list and a server's puppetdb.conf gone: --noop names
    both and changes nothing; the run puts them back (PuppetDB restarted, healthy again)."""
    compiler2, compiler1 = fqdn(infrastructure, "compiler2"), fqdn(infrastructure, "compiler1")
    infrastructure.ssh("main", f"sed -i '/^{compiler2}$/d' {PDB.allowlist}")
    infrastructure.ssh("compiler1", f"rm {LAYOUT.confdir}/puppetdb.conf")
    try:
        done, document, log = _install(infrastructure, tmp_path, "--noop")
        assert done.returncode == 0, done.stderr[-3000:]
        messages = {target: said for target, (_, said) in _per_target(document).items()}
        assert "would" in messages[fqdn(infrastructure, "main")] and \
            "certificate-allowlist" in messages[fqdn(infrastructure, "main")]
        assert "puppetdb.conf" in messages[compiler1]
        assert compiler2 not in infrastructure.ssh("main", f"cat {PDB.allowlist}")
        assert infrastructure.ssh("compiler1", f"ls {LAYOUT.confdir}/puppetdb.conf",
                                  check=False) == ""
    finally:
        done, document, log = _install(infrastructure, tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    statuses = _statuses(document)
    assert statuses[fqdn(infrastructure, "main")] == "changed"
    assert statuses[compiler1] == "changed" and statuses[compiler2] == "unchanged"
    assert compiler2 in infrastructure.ssh("main", f"cat {PDB.allowlist}")
    main = fqdn(infrastructure, "main")
    ssl = puppetdb.host_ssl(LAYOUT, main)
    status = infrastructure.ssh("main", f"curl -s --cacert {ssl.ca} --cert {ssl.cert} --key "
                                        f"{ssl.key} https://{main}:8081{puppetdb.STATUS_PATH}")
    assert json.loads(status)["state"] == "running"


def _query(infrastructure, *args: str):
    return cli("command", "true", "-i", str(infrastructure.lab.inventory), "--format", "json",
               *args, timeout=300)


def test_query_selects_exactly_the_nodes_puppetdb_knows_and_intersects_targets(infrastructure,
                                                                               pdb):
    known = {n.name for n in pdb.nodes()}
    assert fqdn(infrastructure, "agent1") in known
    done = _query(infrastructure, "--query", "nodes[certname] { }")
    assert done.returncode == 0, done.stderr[-2000:]
    assert set(_statuses(json.loads(done.stdout))) == known
    listed = cli("inventory", "-i", str(infrastructure.lab.inventory), "--format", "json",
                 "--query", "nodes[certname] { }", timeout=300)
    assert listed.returncode == 0, listed.stderr[-2000:]
    assert set(json.loads(listed.stdout)["targets"]) == known  # the same targets, listed
    agent1 = fqdn(infrastructure, "agent1")
    done = _query(infrastructure, "--query", "nodes[certname] { }", "--targets", f"{agent1},main")
    assert done.returncode == 0, done.stderr[-2000:]
    assert set(_statuses(json.loads(done.stdout))) == {agent1}


@pytest.mark.reliability(fault="a PQL query PuppetDB cannot parse",
                         outcome="exit 2 with PuppetDB's own message, nothing run")
def test_a_bad_query_is_exit_2_with_puppetdbs_message(infrastructure):
    done = _query(infrastructure, "--query", "nodes[certname { ")
    assert done.returncode == 2 and done.stdout == ""
    assert "--query: PuppetDB:" in done.stderr, done.stderr[-2000:]
