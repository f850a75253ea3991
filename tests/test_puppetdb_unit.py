"""PuppetDB's pure parts: the files install_puppetdb writes, the allow-list edits, the SCRAM
verifier PostgreSQL gets instead of the password, and the plan's refusal of bad input before
any host is contacted. The real thing is tested on the lab (tests/test_puppetdb_lab.py)."""
from __future__ import annotations

import base64
import hashlib
import hmac

import pytest
import yaml

from puppetops.errors import UsageError
from puppetops.puppet import puppetdb
from puppetops.puppet.layout import LAYOUTS
from puppetops.steps.puppetdb import control
from puppetops.testing.plans import PlanTester

DEBIAN_JETTY = """[jetty]
# host = <host>
port = 8080
# ssl-host = <host>
# ssl-port = <port>
access-log-config = /etc/puppetdb/request-logging.xml
"""


def test_jetty_ini_serves_tls_with_the_hosts_certificate_and_keeps_the_packages_lines():
    ssl = puppetdb.jetty_ssl(LAYOUTS["debian"], "main.example.com")
    text = puppetdb.jetty_ini(DEBIAN_JETTY, ssl)
    assert "ssl-port = 8081" in text and "ssl-host = 0.0.0.0" in text
    assert "ssl-key = /var/lib/puppet/ssl/private_keys/main.example.com.pem" in text
    assert "ssl-cert = /var/lib/puppet/ssl/certs/main.example.com.pem" in text
    assert "ssl-ca-cert = /var/lib/puppet/ssl/certs/ca.pem" in text
    assert "port = 8080" in text and "access-log-config" in text and "# host = <host>" in text
    assert puppetdb.jetty_ini(text, ssl) == text  # applied twice: the same file


def test_the_aio_layout_copies_the_certificate_into_puppetdbs_own_ssl_dir():
    ssl = puppetdb.jetty_ssl(LAYOUTS["aio"], "main.example.com")
    assert ssl.key == "/etc/puppetlabs/puppetdb/ssl/private.pem"
    assert puppetdb.host_ssl(LAYOUTS["aio"], "m.x").cert == "/etc/puppetlabs/puppet/ssl/certs/m.x.pem"


def test_a_hyphenated_ini_key_is_replaced_not_added_again():
    once = puppetdb.jetty_ini("[jetty]\nssl-port = 9999\n", puppetdb.host_ssl(LAYOUTS["debian"], "a.b"))
    assert once.count("ssl-port") == 1 and "ssl-port = 8081" in once


def test_database_ini_keeps_an_existing_password_reader():
    text = puppetdb.database_ini("# ours\n", "s3cret")
    assert puppetdb.database_password(text) == "s3cret"
    assert "subname = //127.0.0.1:5432/puppetdb" in text and "username = puppetdb" in text
    assert puppetdb.database_password("[other]\npassword = x\n") is None
    assert puppetdb.database_password(None) is None


def test_allowlist_adds_removes_and_keeps_the_operators_lines():
    first = puppetdb.allowlist(None, ["main.x", "compiler1.x"])
    assert puppetdb.allowlist_names(first) == ["main.x", "compiler1.x"]
    assert first.startswith("#")
    mine = first + "# my monitoring\nmonitor.x\n"
    after = puppetdb.allowlist(mine, ["compiler2.x", "main.x"], remove=["compiler1.x"])
    assert puppetdb.allowlist_names(after) == ["main.x", "monitor.x", "compiler2.x"]
    assert "# my monitoring" in after
    assert puppetdb.allowlist(after, ["compiler2.x"]) == after  # nothing new: same text


def test_routes_yaml_stores_facts_in_puppetdb_and_keeps_other_routes():
    text = puppetdb.routes_yaml(None)
    assert yaml.safe_load(text) == {"master": {"facts": {"terminus": "puppetdb", "cache": "yaml"}}}
    assert puppetdb.routes_yaml(text) == text
    mine = yaml.safe_dump({"server": {"node": {"terminus": "exec"}}})
    assert yaml.safe_load(puppetdb.routes_yaml(mine)) == {
        "server": {"node": {"terminus": "exec"}, "facts": {"terminus": "puppetdb", "cache": "yaml"}}}
    with pytest.raises(ValueError):
        puppetdb.routes_yaml("- a list\n")


def test_puppetdb_conf_names_the_host_by_certname():
    assert puppetdb.puppetdb_conf(None, "pdb.example.com") == \
        "[main]\nserver_urls = https://pdb.example.com:8081\n"


def _reference_verifier(password: str, salt: bytes, iterations: int) -> tuple[bytes, bytes]:
    """RFC 5802 written out: SaltedPassword = Hi(...), StoredKey = H(HMAC(SP, "Client Key"))."""
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations)
    stored = hashlib.sha256(hmac.new(salted, b"Client Key", hashlib.sha256).digest()).digest()
    return stored, hmac.new(salted, b"Server Key", hashlib.sha256).digest()


def test_the_scram_verifier_is_postgresqls_format_and_matches_only_its_password():
    salt = bytes(range(16))
    verifier = puppetdb.scram_verifier("pencil", salt)
    head, keys = verifier.split("$")[1:]
    assert verifier.startswith("SCRAM-SHA-256$4096:") and "pencil" not in verifier
    assert base64.b64decode(head.split(":")[1]) == salt
    stored, server = (base64.b64decode(k) for k in keys.split(":"))
    assert (stored, server) == _reference_verifier("pencil", salt, 4096)
    assert puppetdb.scram_matches(verifier, "pencil")
    assert not puppetdb.scram_matches(verifier, "pencil2")
    assert not puppetdb.scram_matches("md5abc", "pencil") and not puppetdb.scram_matches(None, "x")


def test_the_daemon_runs_the_units_command_line_as_user_puppetdb():
    command = control.daemon(puppetdb.layout_of(LAYOUTS["debian"])).command
    assert "setpriv --reuid=puppetdb --regid=puppetdb --init-groups" in command
    assert "-m puppetlabs.puppetdb.core services" in command
    assert "--config /etc/puppetdb/conf.d" in command
    assert "--bootstrap-config /etc/puppetdb/bootstrap.cfg" in command
    assert "--restart-file /run/puppetdb/restart" in command


INVENTORY = {"vars": {"lb_name": "lb.example.com"},
             "groups": [{"name": "main", "targets": ["main.example.com"]},
                        {"name": "compilers", "targets": ["c1.example.com"]}]}


@pytest.mark.parametrize("params, inventory_vars, expected", [
    ({"puppetdb_host": "nosuchhost"}, {}, "puppetdb_host"),
    ({"targets": "main,nosuch"}, {}, "nosuch"),
    ({}, {"puppetdb_java_args": "-Xmx1g $(id)"}, "puppetdb_java_args"),
    ({"main": "main,compilers"}, {}, "exactly one"),
])
@pytest.mark.reliability(fault="bad install_puppetdb input (unknown host, hostile JVM flags)",
                         outcome="usage error naming the parameter or var, nothing contacted")
def test_bad_input_is_a_usage_error_before_any_host_is_contacted(params, inventory_vars, expected):
    inventory = {**INVENTORY, "vars": {**INVENTORY["vars"], **inventory_vars}}
    tester = PlanTester(inventory)  # strict: any command would fail the test
    with pytest.raises(UsageError, match=expected):
        tester.run_plan("install_puppetdb", **params)
    assert tester.script.calls == []


def with_puppetdb_group(*hosts: str) -> dict:
    return {**INVENTORY, "groups": [*INVENTORY["groups"],
                                    {"name": "puppetdb", "targets": list(hosts)}]}


def test_the_puppetdb_group_host_is_the_default_and_main_without_one():
    from puppetops.steps.puppetdb.host import puppetdb_host
    tester = PlanTester(INVENTORY)
    main = tester.run.targets("main")[0]
    assert puppetdb_host(tester.run.inventory, main) is main
    tester = PlanTester(with_puppetdb_group())  # an empty group: main still
    assert puppetdb_host(tester.run.inventory, tester.run.targets("main")[0]).name == \
        "main.example.com"
    tester = PlanTester(with_puppetdb_group("pdb.example.com"))
    assert puppetdb_host(tester.run.inventory, tester.run.targets("main")[0]).name == \
        "pdb.example.com"


@pytest.mark.parametrize("groups, expected", [
    ([], "main.example.com"),
    (["pdb.example.com"], "pdb.example.com"),
])
def test_the_query_asks_the_puppetdb_host_the_plans_install_on(groups, expected):
    """One rule for --query and the plans: the puppetdb group's host, else main."""
    from puppetops.cli import query
    from puppetops.inventory import Inventory
    from puppetops.steps.puppetdb.host import puppetdb_host
    inventory = with_puppetdb_group(*groups) if groups else INVENTORY
    tester = PlanTester(inventory)
    planned = puppetdb_host(tester.run.inventory, tester.run.targets("main")[0])
    assert planned.name == query.puppetdb_host(Inventory.from_dict(inventory)).name == expected


@pytest.mark.reliability(fault="a puppetdb inventory group naming two hosts",
                         outcome="usage error naming the group, from install_puppetdb and --query "
                                 "alike, nothing contacted")
def test_a_puppetdb_group_of_two_hosts_is_refused_by_the_plans_and_the_query():
    from puppetops.cli import query
    from puppetops.inventory import Inventory
    inventory = with_puppetdb_group("pdb1.example.com", "pdb2.example.com")
    tester = PlanTester(inventory)
    with pytest.raises(UsageError, match="^puppetdb_host: the puppetdb group must hold one host "
                                         r"\(PuppetDB's\), it holds 2$"):
        tester.run_plan("install_puppetdb")
    assert tester.script.calls == []
    with pytest.raises(UsageError, match="^--query: the puppetdb group must hold one host"):
        query.puppetdb_host(Inventory.from_dict(inventory))


# -- --query: targets from PuppetDB -------------------------------------------------------------

def test_query_answers_become_the_inventorys_targets_or_adhoc_ones():
    from puppetops.cli import query
    from puppetops.inventory import Inventory
    inventory = Inventory.from_dict({"groups": [
        {"name": "main", "targets": ["main.example.com"]},
        {"name": "agents", "targets": [{"name": "web1.example.com", "alias": "web1"}]}]})
    names = query.certnames('[{"certname": "web1.example.com"}, {"certname": "db9.example.com"},'
                            ' {"certname": "web1.example.com"}]', "200")
    assert names == ["web1.example.com", "db9.example.com"]
    assert query.as_spec(inventory, names) == "web1.example.com,ssh://db9.example.com"
    assert query.puppetdb_host(inventory).name == "main.example.com"
    command = query.query_command(inventory.select("main")[0], 'nodes[certname] { }')
    assert "--data-urlencode 'query=nodes[certname] { }'" in command
    assert "--cert /var/lib/puppet/ssl/certs/main.example.com.pem" in command
    assert "https://main.example.com:8081/pdb/query/v4" in command


@pytest.mark.parametrize("answer, code, expected", [
    ("PQL parse error at line 1, column 7", "400", "PuppetDB: PQL parse error"),
    ('[{"name": "x"}]', "200", "needs a certname"),
    ('[{"certname": "a,b"}]', "200", "will not target"),
    ('[{"certname": "--all"}]', "200", "will not target"),
])
@pytest.mark.reliability(fault="a PQL query PuppetDB refuses, or hostile names in its answer",
                         outcome="usage error with PuppetDB's message or the bad name, nothing run")
def test_a_refused_query_or_a_hostile_answer_is_a_usage_error(answer, code, expected):
    from puppetops.cli import query
    with pytest.raises(UsageError, match=expected):
        query.certnames(answer, code)


def test_inventory_takes_query_and_says_where_puppetdb_is_missing(tmp_path):
    from helpers import cli
    path = tmp_path / "inventory.yaml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "agents", "targets": ["web1"]}]}))
    done = cli("inventory", "-i", str(path), "--query", "nodes[certname] { }")
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.strip() == ("error: --query: the inventory has no puppetdb or main group "
                                   "to find PuppetDB on")


@pytest.mark.parametrize("noop", [True, False])
def test_a_host_without_its_certificate_stops_a_real_run_and_a_noop_run_says_it_needs_it(noop):
    """Run for real on this machine (reads only): no certificate for a made-up certname."""
    from puppetops.errors import PlanFailure
    from puppetops.inventory import Inventory
    from puppetops.run import Run
    from puppetops.steps.puppetdb.server import HostCertificate
    inventory = Inventory.from_dict({"targets": [{
        "name": "here", "config": {"transport": "local"},
        "vars": {"certname": "no-such-host.invalid", "puppet_layout": "debian"}}]})
    with Run(inventory, lock=False, noop=noop) as run:
        if noop:
            result = run.step(HostCertificate(), "here")[0]
            assert (result.status, result.message) == (
                "changed", "would need the certificate of no-such-host.invalid "
                           "(/var/lib/puppet/ssl/certs/no-such-host.invalid.pem)")
        else:
            with pytest.raises(PlanFailure) as failed:
                run.step(HostCertificate(), "here")
            result = failed.value.results[0]
            assert result.status == "failed"
            assert result.message.startswith("here has no Puppet certificate (/var/lib/puppet/"
                                             "ssl/certs/no-such-host.invalid.pem): PuppetDB")
