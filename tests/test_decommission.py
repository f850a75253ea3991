"""remove_compiler and purge_agent without hosts: what they refuse, what they skip for a host
that does not answer, what noop leaves alone, and that a re-run changes nothing.

The fake fleet (fake_fleet.Fleet) answers HAProxy's runtime API and files; here it also keeps
the CA's certificates (its REST API, as ``ca_api`` calls it with curl), services and whether a
host answers at all.
"""
from __future__ import annotations

import hashlib
import json
import re

import pytest

from fake_fleet import C1, C2, INVENTORY as FLEET, LB, MAIN, Fleet, Messages, planner
from puppetops import UsageError
from puppetops.errors import TransientTransportError
from puppetops.output import Output
from puppetops.plans.install_webhook import inventory_text
from puppetops.plans.purge_agent import purge_agent
from puppetops.plans.remove_compiler import remove_compiler
from puppetops.steps.lb import haproxy, nginx
from puppetops.steps.lb.out_records import DECOMMISSIONED, OutRecord
from puppetops.steps.lb.pool import Member
from puppetops.steps.webhook_files import PATHS as WEBHOOK, inventory_without
from puppetops.target import Target

AGENT1, AGENT2 = "agent1.example.com", "agent2.example.com"
GONE = "retired.example.com"  # a certname no inventory names any more
INVENTORY = {**FLEET, "groups": [*FLEET["groups"], {"name": "agents", "targets": [
    {"name": AGENT1, "alias": "agent1"}, {"name": AGENT2, "alias": "agent2"}]}]}
CA_CRL = "/etc/puppet/puppetserver/ca/ca_crl.pem"
ALLOWLIST = "/etc/puppetdb/certificate-allowlist"
PDB_NODE = re.compile(r"http://127.0.0.1:8080/pdb/query/v4/nodes/([a-z0-9.-]+)")
CA_URL = re.compile(r"https://[^/]+/puppet-ca/v1/certificate_status/([a-z0-9.-]+)")


class Decom(Fleet):
    """The fleet, plus the CA, services, SSL files and hosts that do not answer."""

    def __init__(self):
        super().__init__()
        self.certs = {n: "signed" for n in (MAIN, C1, C2, AGENT1, AGENT2, GONE)}
        self.running = {(h, s) for h in (MAIN, C1, C2) for s in ("puppetserver",)} | \
            {(a, "puppet") for a in (AGENT1, AGENT2)}
        self.at_boot = set(self.running)
        self.ssl = {AGENT1, AGENT2}  # agents with their key and certificate
        self.gone: set[str] = set()  # hosts that do not answer
        self.crl_serials = 0
        self.files[(MAIN, CA_CRL)] = self.crl()
        self.files[(LB, haproxy.CONFIG)] = haproxy.render([Member(C1, C1), Member(C2, C2)])
        self.ca_calls: list[str] = []
        self.puppetdb = False  # install_puppetdb has put PuppetDB on main
        self.pdb_nodes = {MAIN, C1, C2, AGENT1, AGENT2, GONE}  # certnames PuppetDB knows

    def with_puppetdb(self) -> "Decom":
        self.puppetdb = True
        self.files[(MAIN, ALLOWLIST)] = f"# allowed\n{MAIN}\n{C1}\n{C2}\n"
        return self

    def crl(self) -> str:
        return f"CRL with {self.crl_serials} serials\n"

    def respond(self, target, command, stdin):
        if target in self.gone:
            raise TransientTransportError(f"{target}: connection timed out")
        return super().respond(target, command, stdin)

    def _answer(self, target, command, stdin):
        if command == "true" or command.startswith("[ -d /run/systemd/system ]"):
            return "" if command == "true" else (1, "")
        m = re.match(r"for i in \$\(seq 50\); do (!?) ?\{ /etc/init.d/(\w+) status", command)
        if m:  # Service.verify: settled running (or, with !, stopped)
            running = (target, m.group(2)) in self.running
            return "" if running != bool(m.group(1)) else (1, "")
        m = re.match(r"\[ -x /etc/init.d/(\w+) \]", command)
        if m:
            return ""
        m = re.match(r"/etc/init.d/(\w+) (status|stop|start|reload)", command)
        if m:
            return self._service(target, m.group(1), m.group(2))
        m = re.match(r"ls /etc/rc\[2-5\]\.d/S\[0-9\]\[0-9\](\w+)", command)
        if m:
            return "" if (target, m.group(1)) in self.at_boot else (2, "")
        m = re.match(r"update-rc.d (\w+) disable", command)
        if m:
            self.at_boot.discard((target, m.group(1)))
            return ""
        if command.startswith("[ -f ") and "grep -q certificate-allowlist" in command:
            return "" if self.puppetdb else (1, "")
        if command.startswith("stat -c '%a %u:%g'"):
            return "640 0:0\n"
        if command.startswith("chown 0:0 "):
            return ""
        if command.startswith("for u in ") and "/pdb/query/v4/nodes/" in command:
            return "".join("200\n" if n in self.pdb_nodes else "404\n"
                           for n in PDB_NODE.findall(command))
        if "/pdb/admin/v1/cmd" in command:
            self.pdb_nodes.discard(json.loads(re.search(r"--data '([^']*)'", command).group(1))
                                   ["payload"]["certname"])
            return "{}\n200"
        if command.startswith("curl -sS") and "/puppet-ca/v1/" in command:
            return self._ca(command)
        if command.startswith("haproxy -c -f") or command.startswith("mv -f "):
            return self._mv(target, command)
        if command.startswith("for f in ") and "/ssl/" in command:  # NodeSslCleaned's check
            return f"/var/lib/puppet/ssl/certs/{target}.pem\n" if target in self.ssl else ""
        if command.startswith("set -e") and 'rm -f "$KEY"' in command:  # csr.clean_script
            self.ssl.discard(target)
            return ""
        if command.startswith("sha256sum ") and "crl.pem" in command:
            have = self.files.get((target, "/var/lib/puppet/ssl/crl.pem"))
            return f"{hashlib.sha256(have.encode()).hexdigest()}  /var/lib/puppet/ssl/crl.pem\n" \
                if have else ""
        if command.startswith("set -e") and "crl.pem" in command:  # csr.bundle_script
            self.files[(target, "/var/lib/puppet/ssl/crl.pem")] = self.files[(MAIN, CA_CRL)]
            return ""
        if command.startswith("[ -f ") and "sha256sum <" in command:  # FileContent's state
            path = re.match(r"\[ -f (\S+) \]", command).group(1)
            text = self.files.get((target, path))
            if text is None:
                return ""
            return f"{hashlib.sha256(text.encode()).hexdigest()}\n600 root:root\n"
        return super()._answer(target, command, stdin)

    def _mv(self, target, command):
        m = re.match(r"mv -f (\S+) (\S+)$", command)
        if m:
            self.files[(target, m.group(2))] = self.files.pop((target, m.group(1)))
        if "reload" in command or "server-state" in command:
            self.lb_commands.append("reload")
        return ""

    def _service(self, target, service, action):
        if action == "status":
            return "" if (target, service) in self.running else (3, "")
        if action == "stop":
            self.running.discard((target, service))
        elif action == "start":
            self.running.add((target, service))
        else:
            self.lb_commands.append(f"{action} {service}")
        return ""

    def _ca(self, command):
        self.ca_calls.append(command)
        method = re.search(r" -X (\w+)", command).group(1)
        out = []
        for name in CA_URL.findall(command):
            state = self.certs.get(name)
            if method == "GET":
                out.append((json.dumps({"name": name, "state": state, "fingerprints":
                                        {"SHA256": "AA:BB"}}), 200) if state else ("", 404))
            elif method == "PUT":  # desired_state revoked
                self.certs[name] = "revoked"
                self.crl_serials += 1
                self.files[(MAIN, CA_CRL)] = self.crl()
                out.append(("", 204))
            elif method == "DELETE":
                self.certs.pop(name, None)
                out.append(("", 204))
        return "".join(f"{body}\n@@puppetops-http {code}\n" for body, code in out)


def plan_tester(fleet, noop=False, messages=None):
    return planner(fleet, noop=noop, inventory=INVENTORY,
                   output=Output(messages) if messages else None)


def lb_members(fleet) -> list[str]:
    return [m.name for m in haproxy.parse_members(fleet.files[(LB, haproxy.CONFIG)])]


# -- remove_compiler ---------------------------------------------------------------------------

def test_remove_compiler_drains_removes_stops_revokes_and_refreshes_the_crl():
    fleet = Decom()
    fleet.files[(MAIN, WEBHOOK.inventory)] = inventory_text(
        Target(name=MAIN), [Target(name=C1), Target(name=C2)], [])
    results = plan_tester(fleet).run_plan(remove_compiler, targets="compiler2")
    assert results.ok, results.details()
    assert C2 not in fleet.files[(MAIN, WEBHOOK.inventory)]
    assert C1 in fleet.files[(MAIN, WEBHOOK.inventory)]
    assert lb_members(fleet) == [C1]
    states = [c for c in fleet.lb_commands if c.startswith("set server")]
    assert states == [f"set server puppet_compilers/{C2} state drain",
                      f"set server puppet_compilers/{C2} state maint"]
    assert not any(k[0] == LB and "/lb-out/" in k[1] for k in fleet.files)  # record gone
    assert (C2, "puppetserver") not in fleet.running | fleet.at_boot
    assert (C1, "puppetserver") in fleet.running
    assert C2 not in fleet.certs and fleet.certs[C1] == "signed"
    assert fleet.files[(C1, "/var/lib/puppet/ssl/crl.pem")] == "CRL with 1 serials\n"
    assert (C2, "/var/lib/puppet/ssl/crl.pem") not in fleet.files


def test_removing_a_removed_compiler_again_changes_nothing():
    fleet = Decom()
    plan_tester(fleet).run_plan(remove_compiler, targets="compiler2")
    again = plan_tester(fleet).run_plan(remove_compiler, targets="compiler2")
    assert again.ok, again.details()
    assert {r.status for r in again} == {"unchanged"}, again.details()


@pytest.mark.reliability(fault="removing the last compiler serving behind the LB",
                         outcome="refused before anything changes, naming why the other member "
                                 "does not serve")
def test_removing_the_last_serving_member_is_refused_and_changes_nothing():
    fleet = Decom()
    fleet.failing_check.add(C1)  # compiler1's health check fails: compiler2 serves alone
    before = dict(fleet.files)
    results = plan_tester(fleet).run_plan(remove_compiler, targets="compiler2")
    assert not results.ok
    assert "refusing to take out compiler2.example.com" in results.find(LB).message
    assert "health check fails" in results.find(LB).message
    assert fleet.files == before and fleet.certs[C2] == "signed"
    assert (C2, "puppetserver") in fleet.running
    assert not [c for c in fleet.lb_commands if c.startswith("set server")]


def test_removing_every_compiler_is_refused():
    fleet = Decom()
    results = plan_tester(fleet).run_plan(remove_compiler, targets="compilers")
    assert "no other member would be serving" in results.find(LB).message
    assert set(lb_members(fleet)) == {C1, C2} and fleet.certs[C1] == fleet.certs[C2] == "signed"


@pytest.mark.reliability(fault="the compiler to remove does not answer (gone for good)",
                         outcome="out of the LB and revoked on the CA all the same; the run says "
                                 "its Puppet Server was not stopped")
def test_an_unreachable_compiler_is_still_removed_from_the_lb_and_the_ca():
    fleet = Decom()
    fleet.gone.add(C2)
    messages = Messages()
    results = plan_tester(fleet, messages=messages).run_plan(remove_compiler, targets="compiler2")
    assert results.ok, results.details()
    assert results.find(C2).message.startswith("unreachable: host-side steps skipped")
    assert lb_members(fleet) == [C1] and C2 not in fleet.certs
    assert any("compiler2.example.com did not answer" in m for m in messages.texts)


def test_noop_reports_the_removal_and_changes_nothing():
    fleet = Decom()
    before = (dict(fleet.files), dict(fleet.certs), set(fleet.running))
    results = plan_tester(fleet, noop=True).run_plan(remove_compiler, targets="compiler2")
    assert results.ok, results.details()
    assert "would drain compiler2.example.com" in results.find(LB).message
    assert "revoke and delete the certificate of compiler2.example.com" in \
        results.find(MAIN).message
    assert "stop puppetserver" in results.find(C2).message
    assert (dict(fleet.files), dict(fleet.certs), set(fleet.running)) == before
    assert not [c for c in fleet.lb_commands if c.startswith("set server")]


def being_removed(fleet: Decom, admin_flags: int) -> None:
    """compiler2 out of load balancing (HAProxy admin flags) with remove_compiler's record, as
    an interrupted removal leaves it."""
    fleet.admin[C2] = admin_flags
    fleet.files[(LB, f"/var/lib/puppetops/lb-out/{C2}.json")] = OutRecord(
        "remove_compiler", "0123456789ab", "ops@admin1", "t", DECOMMISSIONED).to_json(C2)


@pytest.mark.reliability(fault="remove_compiler interrupted after the drain",
                         outcome="the compiler stays out with its record; a re-run finishes")
def test_a_removal_left_half_done_is_finished_by_a_re_run():
    """Interrupted after the drain: compiler2 is out (drain) with remove_compiler's record."""
    fleet = Decom()
    being_removed(fleet, 8)
    results = plan_tester(fleet).run_plan(remove_compiler, targets="compiler2")
    assert results.ok, results.details()
    assert lb_members(fleet) == [C1] and C2 not in fleet.certs


def test_a_compiler_being_removed_is_not_rotated_back_in():
    from puppetops.plans.rotate_lb_member import rotate_lb_member
    fleet = Decom()
    being_removed(fleet, 1)
    results = plan_tester(fleet).run_plan(rotate_lb_member, targets="compiler2")
    assert "on its way out" in results.find(LB).message
    assert "invoke remove-compiler --targets compiler2.example.com" in results.find(LB).message
    assert fleet.admin[C2] == 1


def test_a_removed_compiler_leaves_puppetdbs_allow_list_without_a_restart_by_default():
    fleet = Decom().with_puppetdb()
    messages = Messages()
    results = plan_tester(fleet, messages=messages).run_plan(remove_compiler, targets="compiler2")
    assert results.ok, results.details()
    assert fleet.files[(MAIN, ALLOWLIST)] == f"# allowed\n{MAIN}\n{C1}\n"
    assert any("PuppetDB reads it at its next start" in m for m in messages.texts)
    assert any(f"take {C2} out of the inventory's groups" in m and "would bring it back" in m
               for m in messages.texts), messages.texts
    again = plan_tester(fleet).run_plan(remove_compiler, targets="compiler2")
    assert {r.status for r in again} == {"unchanged"}, again.details()


def test_main_is_no_compiler_to_remove():
    with pytest.raises(UsageError, match="is main, the CA"):
        plan_tester(Decom()).run_plan(remove_compiler, targets="main")


# -- purge_agent -------------------------------------------------------------------------------

def test_purge_agent_stops_it_cleans_it_and_revokes_its_certificate():
    fleet = Decom()
    results = plan_tester(fleet).run_plan(purge_agent, targets="agent2")
    assert results.ok, results.details()
    assert AGENT2 not in fleet.certs and fleet.certs[AGENT1] == "signed"
    assert (AGENT2, "puppet") not in fleet.running | fleet.at_boot
    assert AGENT2 not in fleet.ssl and AGENT1 in fleet.ssl
    assert fleet.files[(C1, "/var/lib/puppet/ssl/crl.pem")] == \
        fleet.files[(C2, "/var/lib/puppet/ssl/crl.pem")] == "CRL with 1 serials\n"
    again = plan_tester(fleet).run_plan(purge_agent, targets="agent2")
    assert {r.status for r in again} == {"unchanged"}, again.details()


@pytest.mark.reliability(fault="the agent to purge does not answer (gone for good)",
                         outcome="revoked and deleted on the CA all the same; the run says its "
                                 "agent was not stopped")
def test_purge_agent_of_a_host_gone_for_good_purges_it_on_the_ca():
    fleet = Decom()
    fleet.gone.add(AGENT2)
    messages = Messages()
    results = plan_tester(fleet, messages=messages).run_plan(purge_agent, targets="agent2",
                                                        certnames=[GONE])
    assert results.ok, results.details()
    assert AGENT2 not in fleet.certs and GONE not in fleet.certs
    assert results.find(AGENT2).message.startswith("unreachable")
    assert any("agent2.example.com did not answer" in m for m in messages.texts)


def test_purge_agent_by_certname_alone_touches_no_agent():
    fleet = Decom()
    results = plan_tester(fleet).run_plan(purge_agent, certnames=[GONE])
    assert results.ok, results.details()
    assert GONE not in fleet.certs
    assert {r.target for r in results} == {MAIN, C1, C2}


def test_purge_agent_of_nobody_is_refused_before_the_plan_starts():
    fleet = Decom()
    tester = plan_tester(fleet)
    with pytest.raises(UsageError, match="give the agents .* or their certnames"):
        tester.run_plan(purge_agent)
    assert tester.run.steps == []  # its rule ran before its body: nothing gathered, nothing run


def test_purge_agent_deletes_the_node_from_puppetdb_where_it_is_installed():
    fleet = Decom().with_puppetdb()
    results = plan_tester(fleet).run_plan(purge_agent, targets="agent2", certnames=[GONE])
    assert results.ok, results.details()
    assert fleet.pdb_nodes == {MAIN, C1, C2, AGENT1}
    assert "delete agent2.example.com, retired.example.com from PuppetDB" in \
        results.find(MAIN).message
    again = plan_tester(fleet).run_plan(purge_agent, targets="agent2")
    assert {r.status for r in again} == {"unchanged"}, again.details()


def test_purge_agent_noop_changes_nothing():
    fleet = Decom().with_puppetdb()
    results = plan_tester(fleet, noop=True).run_plan(purge_agent, targets="agent2")
    assert "revoke and delete the certificate of agent2.example.com" in \
        results.find(MAIN).message
    assert "would delete agent2.example.com from PuppetDB" in results.find(MAIN).message
    assert fleet.certs[AGENT2] == "signed" and AGENT2 in fleet.ssl and AGENT2 in fleet.pdb_nodes
    assert (AGENT2, "puppet") in fleet.running


@pytest.mark.reliability(fault="a bad or a server's certname given to purge_agent",
                         outcome="usage error (exit 2) naming it, nothing contacted")
@pytest.mark.parametrize("certnames, expected", [
    (["--all"], "invalid certname '--all'"),
    (["Agent;rm -rf /"], "invalid certname"),
    (["*"], "invalid certname"),
    ([C1], "is a server's certname"),
    ([], "give the agents"),
])
def test_purge_agent_refuses_bad_certnames_before_anything_runs(certnames, expected):
    fleet = Decom()
    t = plan_tester(fleet)
    with pytest.raises(UsageError, match=re.escape(expected)):
        t.run_plan(purge_agent, certnames=certnames)
    assert t.script.calls == []


# -- pieces ------------------------------------------------------------------------------------

def test_nginx_removal_keeps_the_other_members_down_flags():
    text = nginx.render([Member(C1, C1), Member(C2, C2), Member("c3.example.com", "c3.example.com")])
    text = nginx.mark(text, "c3.example.com", True)
    left = nginx.without(text, [C2])
    assert sorted(m.name for m in nginx.parse_members(left)) == ["c3.example.com", C1]
    assert nginx.mark(left, "c3.example.com", True) == left  # still down
    assert nginx.without(left, [C2]) == left


def test_the_webhook_inventory_loses_only_the_removed_compiler():
    def target(name):
        return Target(name=name, uri=name)
    text = inventory_text(target(MAIN), [target(C1), target(C2)], [target(LB)])
    left = inventory_without(text, [C2])
    assert left.startswith("# managed by puppetops install_webhook")
    assert C2 not in left and C1 in left and LB in left
    assert inventory_without(left, [C2]) == left
    assert WEBHOOK.inventory.endswith("inventory.yaml")


def test_puppetserver_running_enables_it_at_boot_again_under_systemd():
    """remove_compiler disabled it; add_compiler's start must undo that, not only start it."""
    from puppetops.steps.puppetserver import PuppetserverRunning
    from puppetops.testing.plans import PlanTester
    t = PlanTester({"targets": [C2]})
    t.on("[ -d /run/systemd/system ]")
    t.on("systemctl is-enabled --quiet puppetserver")  # once enabled
    t.on("systemctl is-enabled --quiet puppetserver", exit_code=1, times=2)  # check, change
    t.on("systemctl is-active --quiet puppetserver")
    t.on("systemctl enable --quiet puppetserver")
    t.on(re.compile(r"^curl -sk .*/status/v1/simple"), stdout="running")
    t.on(re.compile(r"^for i in \$\(seq 5\)"))  # wait_ready: ready
    results = t.run.step(PuppetserverRunning(), [C2], catch_errors=True)
    assert "enable --quiet puppetserver" in " ".join(t.commands(C2))
    assert results[0].message == "enable puppetserver at boot"
