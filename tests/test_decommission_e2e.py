"""End to end on the stood-up lab: remove_compiler while agents run, purge_agent, and each
host brought back (add_compiler, enroll_agent) in the same test, so the tests after these
still find the whole infrastructure.
"""
from __future__ import annotations

import pytest

from puppetops.plans.add_compiler import add_compiler
from puppetops.plans.enroll_agent import enroll_agent
from puppetops.plans.purge_agent import purge_agent
from puppetops.plans.remove_compiler import remove_compiler
from puppetops.steps.webhook_files import PATHS as WEBHOOK

from test_operate_e2e import AGENTS, LOOP, PIDFILE, SOCKET, fqdn, lb_states, wait_for

pytestmark = pytest.mark.lab

SSL = "/var/lib/puppet/ssl"
CADIR = "/etc/puppet/puppetserver/ca"


def serial(infra, short: str) -> str:
    """The serial of the host's own certificate, as openssl prints it (hex)."""
    out = infra.ssh(short, f"openssl x509 -noout -serial -in {SSL}/certs/{fqdn(infra, short)}.pem")
    return out.strip().split("=", 1)[1]


def revoked_serials(infra, short: str, crl: str) -> set[str]:
    text = infra.ssh(short, f"openssl crl -noout -text -in {crl}")
    return {line.split(":", 1)[1].strip() for line in text.splitlines()
            if line.strip().startswith("Serial Number:")}


def sessions(infra, member: str) -> int:
    """HAProxy's current sessions on ``member`` (show stat's scur)."""
    text = infra.ssh("lb", f"echo 'show stat' | socat stdio unix-connect:{SOCKET}")
    rows = [line.split(",") for line in text.splitlines() if line.startswith("puppet_compilers,")]
    return next(int(r[4]) for r in rows if r[1] == member)


def codes(infra, agent: str) -> list[int]:
    return [int(c) for c in infra.ssh(agent, "cat /tmp/e2e-loop.codes 2>/dev/null || true").split()]


def catalog_answer(infra, agent: str, server: str) -> str:
    """What ``server`` answers an agent presenting the copy of its certificate kept in /tmp
    (the HTTP status, or curl's error when TLS refuses it)."""
    url = f"https://{server}:8140/puppet/v3/node/{fqdn(infra, agent)}?environment=production"
    return infra.ssh(agent, "curl -s -o /dev/null -w '%{http_code}' --cacert /tmp/kept-ca.pem "
                            "--cert /tmp/kept-cert.pem --key /tmp/kept-key.pem "
                            f"'{url}' 2>&1; true").strip()


ALLOWLIST = "/etc/puppetdb/certificate-allowlist"


def puppetdb_installed(infra) -> bool:
    """The demo installs PuppetDB on main (install_puppetdb)."""
    return infra.ssh("main", f"[ -f {ALLOWLIST} ] && echo yes || true").strip() == "yes"


def in_puppetdb(infra, certname: str) -> bool:
    """PuppetDB holds something about ``certname`` (asked on main's localhost port)."""
    code = infra.ssh("main", "curl -s -o /dev/null -w '%{http_code}' "
                             f"http://127.0.0.1:8080/pdb/query/v4/nodes/{certname}; true")
    assert code in ("200", "404"), code
    return code == "200"


def on_ca(infra, certname: str) -> list[str]:
    """The CA's files for ``certname`` (signed certificate, pending request)."""
    return infra.ssh("main", f"ls {CADIR}/signed/{certname}.pem {CADIR}/requests/{certname}.pem "
                             "2>/dev/null || true").split()


def test_remove_compiler_under_agent_load_then_add_it_back(infrastructure):
    infra = infrastructure
    c1, c2 = fqdn(infra, "compiler1"), fqdn(infra, "compiler2")
    c2_serial = serial(infra, "compiler2")
    webhook_inventory = infra.ssh("main", f"cat {WEBHOOK.inventory}")  # the demo installed it
    assert c2 in webhook_inventory
    puppetdb = puppetdb_installed(infra)
    allowlist = infra.ssh("main", f"cat {ALLOWLIST}") if puppetdb else ""
    for agent in AGENTS:
        infra.ssh(agent, LOOP)
    try:  # an agent run in flight on compiler2: the removal must wait for it to end
        wait_for("an agent run on compiler2", lambda: sessions(infra, c2) > 0, 300)
        with infra.run() as run:
            results = remove_compiler(run, targets="compiler2", drain_timeout=300.0)
        done = {agent: len(codes(infra, agent)) for agent in AGENTS}
        for agent in AGENTS:  # and agent runs go on through compiler1 alone
            wait_for(f"{agent}'s runs after the removal",
                     lambda: len(codes(infra, agent)) >= done[agent] + 2, 300)
    finally:
        for agent in AGENTS:  # let the run in progress finish, then read every exit code
            infra.ssh(agent, "touch /tmp/e2e-loop.stop; while kill -0 $(cat /tmp/e2e-loop.pid) "
                             "2>/dev/null; do sleep 1; done")
    try:
        assert results.ok, results.details()
        drained = next(r for s in run.steps for r in s if r.step == "LB sessions drained")
        assert drained.status == "changed", drained  # it waited for the run in flight
        for agent in AGENTS:
            ran = codes(infra, agent)
            print(agent, f"{len(ran)} runs, exit codes {sorted(set(ran))}")
            assert set(ran) <= {0, 2}, \
                infra.ssh(agent, "grep -E 'Error|Warning' /tmp/e2e-loop.log")
        assert set(lb_states(infra)) == {c1}
        assert c2 not in infra.ssh("main", f"cat {WEBHOOK.inventory}")  # no more deploys there
        if puppetdb:  # off the list PuppetDB reads at its next start (not restarted)
            assert c2 not in infra.ssh("main", f"cat {ALLOWLIST}")
        assert on_ca(infra, c2) == []
        assert c2_serial in revoked_serials(infra, "main", f"{CADIR}/ca_crl.pem")
        assert c2_serial in revoked_serials(infra, "compiler1", f"{SSL}/crl.pem")
        # compiler2's certificate fails verification against the CRL compiler1 now has
        cert = infra.ssh("compiler2", f"cat {SSL}/certs/{c2}.pem")
        verdict = infra.ssh("compiler1", f"cat > /tmp/c2.pem <<'EOF'\n{cert}EOF\n"
                                         f"openssl verify -crl_check -CRLfile {SSL}/crl.pem "
                                         f"-CAfile {SSL}/certs/ca.pem /tmp/c2.pem 2>&1; true")
        assert "certificate revoked" in verdict
        assert infra.ssh("compiler2", f"[ -s {PIDFILE} ] && kill -0 $(cat {PIDFILE}) "
                                      "2>/dev/null && echo running || echo stopped").strip() \
            == "stopped"
        with infra.run() as run:
            again = remove_compiler(run, targets="compiler2")
        assert {r.status for r in again} == {"unchanged"}, again.details()
    finally:
        if puppetdb:  # as PuppetDB, never restarted, still has it: add_compiler need not restart it
            infra.ssh("main", f"cat > {ALLOWLIST} <<'EOF'\n{allowlist}EOF\n")
        with infra.run() as run:
            back = add_compiler(run, targets="compiler2")
        # what re-running install_webhook after add_compiler would write back
        infra.ssh("main", f"cat > {WEBHOOK.inventory} <<'EOF'\n{webhook_inventory}EOF\n")
        assert back.ok, back.details()
    assert lb_states(infra) == {c1: (2, 0), c2: (2, 0)}


def test_purge_agent_leaves_no_trace_on_the_ca_then_it_enrols_again(infrastructure):
    infra = infrastructure
    a2 = fqdn(infra, "agent2")
    a2_serial = serial(infra, "agent2")
    infra.ssh("agent2", f"cp {SSL}/certs/{a2}.pem /tmp/kept-cert.pem; cp {SSL}/certs/ca.pem "
                        f"/tmp/kept-ca.pem; cp {SSL}/private_keys/{a2}.pem /tmp/kept-key.pem")
    assert catalog_answer(infra, "agent2", fqdn(infra, "compiler1")) == "200"
    puppetdb = puppetdb_installed(infra)
    assert not puppetdb or in_puppetdb(infra, a2)
    try:
        with infra.run() as run:
            results = purge_agent(run, targets="agent2")
        assert results.ok, results.details()
        for server in ("compiler1", "compiler2"):  # the revoked certificate is refused there
            assert catalog_answer(infra, "agent2", fqdn(infra, server)) == "000"  # TLS refuses it
        assert on_ca(infra, a2) == []
        assert not puppetdb or not in_puppetdb(infra, a2)
        assert a2_serial in revoked_serials(infra, "compiler1", f"{SSL}/crl.pem")
        assert a2_serial in revoked_serials(infra, "compiler2", f"{SSL}/crl.pem")
        assert infra.ssh("agent2", f"ls {SSL}/certs/{a2}.pem {SSL}/private_keys/{a2}.pem "
                                   "2>/dev/null || true").strip() == ""
        with infra.run() as run:
            again = purge_agent(run, targets="agent2")
        assert {r.status for r in again} == {"unchanged"}, again.details()
    finally:
        with infra.run() as run:
            back = enroll_agent(run, targets="agent2")
        assert back.ok, back.details()
    assert len(on_ca(infra, a2)) == 1
    assert not puppetdb or in_puppetdb(infra, a2)  # its first run after enrolling stored it
