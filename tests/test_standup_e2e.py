"""End to end on the session lab, stood up by the demo (bootstrap_ca, add_compiler and
enroll_agent for each host in turn, a deploy and a rotation): the real outcomes, checked on
the hosts themselves, and idempotent re-runs of every stand-up plan.

Tests run in file order; the last two disturb the infrastructure on purpose and restore it.
"""
from __future__ import annotations

import re

import pytest

from puppetops.plans.add_compiler import add_compiler
from puppetops.plans.bootstrap_ca import bootstrap_ca
from puppetops.plans.configure_lb import configure_lb
from puppetops.plans.enroll_agent import enroll_agent
from puppetops.result import CHANGED, FAILED

pytestmark = pytest.mark.lab

COMPILERS = ("compiler1", "compiler2")
AGENTS = ("agent1", "agent2")
SSLDIR = "/var/lib/puppet/ssl"  # the lab runs Debian's packages
ACCESS_LOG = "/var/log/puppetserver/puppetserver-access.log"


def fqdn(infra, short: str) -> str:
    return infra.lab.host(short).fqdn


def test_every_stand_up_plan_ran_ok(infrastructure):
    """(Its speed is bench/lifecycle.py's business; the durations are printed for the log.)"""
    plans = infrastructure.demo["plans"]
    print("stand-up:", {k: round(v, 1) for k, v in infrastructure.durations.items()})
    for name in ("bootstrap_ca", "add_compiler", "enroll_agent"):
        runs = [p for p in plans if p["name"] == name]
        assert runs and all(p["ok"] for p in runs), plans


def test_compiler_certificates_carry_the_lb_name(infrastructure):
    lb = fqdn(infrastructure, "lb")
    for short in COMPILERS:
        name = fqdn(infrastructure, short)
        sans = infrastructure.ssh(short, f"openssl x509 -in {SSLDIR}/certs/{name}.pem -noout "
                                         "-ext subjectAltName")
        assert set(re.findall(r"DNS:([\w.-]+)", sans)) == {name, lb}


def test_keys_are_the_kind_the_inventory_asks_for_and_files_as_puppet_keeps_them(infrastructure):
    """The lab's agents ask for EC keys, compilers keep Puppet's RSA-4096; both made by
    openssl, owned and moded as Puppet's own (a compiler's Puppet Server, user puppet,
    reads its key)."""
    for short, algorithm in (("compiler1", "rsaEncryption"), ("agent1", "id-ecPublicKey")):
        name = fqdn(infrastructure, short)
        text = infrastructure.ssh(short, f"openssl x509 -in {SSLDIR}/certs/{name}.pem -noout -text")
        assert f"Public Key Algorithm: {algorithm}" in text
        if algorithm == "rsaEncryption":
            assert "(4096 bit)" in text
        modes = infrastructure.ssh(short, f"stat -c '%a %U' {SSLDIR}/private_keys/{name}.pem "
                                          f"{SSLDIR}/private_keys {SSLDIR}/certs/{name}.pem")
        assert modes.split("\n")[:3] == ["640 puppet", "750 puppet", "644 puppet"]
        assert infrastructure.ssh(short, f"ls {SSLDIR}/certificate_requests") == ""


def test_the_ca_answers_only_on_main(infrastructure):
    curl = "curl -sk -o /dev/null -w '%{http_code}' "
    probe = (curl + "-X PUT -H 'Content-Type: text/plain' --data-binary x "
             "https://{host}:8140/puppet-ca/v1/certificate_request/probe.puppetops.test")
    ca_cert = curl + "https://{host}:8140/puppet-ca/v1/certificate/ca"
    for short in COMPILERS:
        host = fqdn(infrastructure, short)
        assert infrastructure.ssh("agent1", probe.replace("{host}", host)) in ("404", "503")
        assert infrastructure.ssh("agent1", ca_cert.replace("{host}", host)) in ("404", "503")
    main = fqdn(infrastructure, "main")
    assert infrastructure.ssh("agent1", ca_cert.replace("{host}", main)) == "200"


def test_haproxy_sees_both_compilers_up(infrastructure):
    stat = infrastructure.ssh("lb", "echo 'show stat' | socat stdio "
                                    "unix-connect:/run/haproxy/admin.sock")
    rows = {r[1]: r for r in (line.split(",") for line in stat.splitlines()
                              if line.startswith("puppet_compilers,"))}
    header = stat.splitlines()[0].lstrip("# ").split(",")
    status, check = header.index("status"), header.index("check_status")
    for short in COMPILERS:
        row = rows[fqdn(infrastructure, short)]
        assert (row[status], row[check]) == ("UP", "L7OK")


def test_agents_got_their_catalogs_from_compilers_through_the_lb(infrastructure):
    lb_address = infrastructure.lab.host("lb").address
    compilers = {fqdn(infrastructure, c) for c in COMPILERS}
    for short in AGENTS:
        name = fqdn(infrastructure, short)
        report = infrastructure.ssh(short, "cat /var/cache/puppet/state/last_run_report.yaml")
        assert re.search(r"^status: (changed|unchanged)$", report, re.M)
        compiled_by = set(re.findall(r"message: compiled by (\S+)", report))
        assert len(compiled_by) == 1 and compiled_by <= compilers  # the notify in site.pp
        catalog = f"/puppet/v3/catalog/{name}"
        served = [c for c in COMPILERS if catalog in infrastructure.ssh(c, f"cat {ACCESS_LOG}")]
        assert served, f"no compiler logged a catalog request for {name}"
        for short_c in served:  # and those requests came from the LB, not the agent directly
            lines = [ln for ln in infrastructure.ssh(short_c, f"cat {ACCESS_LOG}").splitlines()
                     if catalog in ln]
            assert all(ln.startswith(f"{lb_address} ") for ln in lines)
        assert catalog not in infrastructure.ssh("main", f"cat {ACCESS_LOG}", check=False)


def test_rerunning_every_plan_changes_nothing(infrastructure):
    with infrastructure.run() as run:
        for plan, params in ((bootstrap_ca, {}), (add_compiler, {"targets": "compilers"}),
                             (configure_lb, {}), (enroll_agent, {"targets": "agents"})):
            summary = plan(run, **params)
            assert summary.ok and not summary.changed, summary.details()
        changed = [(r.target, r.step, r.message) for rs in run.steps for r in rs
                   if r.status == CHANGED]
    assert changed == []


def test_noop_reports_drift_and_changes_nothing(infrastructure):
    conf = "/etc/puppet/puppet.conf"
    main = fqdn(infrastructure, "main")
    infrastructure.ssh("agent2", f"sed -i 's/^server = .*/server = {main}/' {conf}")
    drifted = infrastructure.ssh("agent2", f"cat {conf}")
    with infrastructure.run(noop=True) as run:
        summary = enroll_agent(run, targets="agent2")
    row = summary.find(fqdn(infrastructure, "agent2"))
    assert row.status == CHANGED and row.noop and "puppet.conf" in row.message
    assert infrastructure.ssh("agent2", f"cat {conf}") == drifted
    with infrastructure.run() as run:
        assert enroll_agent(run, targets="agent2").ok
    assert f"server = {fqdn(infrastructure, 'lb')}" in infrastructure.ssh("agent2", f"cat {conf}")


def test_a_request_the_node_did_not_make_is_not_signed(infrastructure):
    """agent1 has its own pending request; behind our back the CA's copy is replaced by one
    made with another key (on agent2's host, under agent1's name). The plan must not sign
    it and must say why, with both fingerprints. Afterwards agent1 is enrolled again."""
    agent, name = "agent1", fqdn(infrastructure, "agent1")
    clean = f"puppetserver ca clean --certname {name}; [ $? != 1 ]"  # 24: it was a request
    submit = f"puppet ssl submit_request --certname {name} --http_keepalive_timeout 0"
    infrastructure.ssh("main", clean)
    infrastructure.ssh(agent, f"puppet ssl clean --certname {name} && {submit} >/dev/null")
    own = infrastructure.ssh(agent, "puppet agent --fingerprint").split()[-1]
    infrastructure.ssh("main", clean)  # the CA forgets agent1's request ...
    infrastructure.ssh("agent2", f"rm -rf /tmp/rogue && {submit} --ssldir /tmp/rogue >/dev/null")
    rogue = infrastructure.ssh("agent2", f"puppet agent --fingerprint --certname {name} "
                                         "--ssldir /tmp/rogue").split()[-1]
    assert rogue != own
    try:
        with infrastructure.run() as run:
            summary = enroll_agent(run, targets=agent)
        row = summary.find(name)
        assert row.status == FAILED
        assert "NOT signing" in row.message and own in row.message and rogue in row.message
        pending = infrastructure.ssh("main", f"puppetserver ca list --certname {name}", check=False)
        assert "Requested" in pending and rogue in pending  # still just a request
    finally:
        infrastructure.ssh("main", clean, check=False)
        infrastructure.ssh("agent2", "rm -rf /tmp/rogue")
        with infrastructure.run() as run:
            assert enroll_agent(run, targets=agent).ok


def test_csr_attributes_are_left_to_puppet_and_end_up_in_the_certificate(infrastructure):
    """A node with csr_attributes.yaml gets its CSR from `puppet ssl submit_request` (openssl
    would drop the extension requests); the rest of the flow is the same. Restored after."""
    agent, name = "agent2", fqdn(infrastructure, "agent2")
    attributes = "/etc/puppet/csr_attributes.yaml"
    cert = f"{SSLDIR}/certs/{name}.pem"
    pp_role = "1.3.6.1.4.1.34380.1.1.13"
    try:
        infrastructure.ssh(agent, f"printf 'extension_requests:\\n  pp_role: webhead\\n' > "
                                  f"{attributes} && rm -f {cert}")
        with infrastructure.run() as run:
            summary = enroll_agent(run, targets=agent, first_run=False)
        assert summary.ok, summary.details()
        text = infrastructure.ssh(agent, f"openssl x509 -in {cert} -noout -text")
        assert pp_role in text and "webhead" in text
    finally:
        infrastructure.ssh(agent, f"rm -f {attributes} {cert}")
        with infrastructure.run() as run:
            assert enroll_agent(run, targets=agent).ok
    assert pp_role not in infrastructure.ssh(agent, f"openssl x509 -in {cert} -noout -text")
