"""Fleet status without hosts: what each host's one script prints is canned (PlanTester), the
rules and the renderings are checked on the document they make. The lab test
(test_status_lab.py) runs the same command on the real infrastructure."""
from __future__ import annotations

import json
import re
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from puppetops.output.status import mermaid, table
from puppetops.plans.status import status
from puppetops.steps.status import sections
from puppetops.steps.status.health import Thresholds, assess
from puppetops.steps.status.script import MARK
from puppetops.testing import PlanTester
from puppetops.transport.base import CommandOutput

NOW = datetime.now(timezone.utc)
MAIN, C1, C2, LB = ("main.example.com", "compiler1.example.com", "compiler2.example.com",
                    "lb.example.com")
AGENTS = ("agent1.example.com", "agent2.example.com")
HEAD = "1f1715d586a0c0ffee00c0ffee00c0ffee00c0ff"
INVENTORY = {"vars": {"lb_name": LB, "puppet_layout": "debian"}, "groups": [
    {"name": "main", "targets": [MAIN]},
    {"name": "compilers", "targets": [C1, C2]},
    {"name": "loadbalancers", "targets": [LB]},
    {"name": "agents", "targets": list(AGENTS)},
    {"name": "other", "targets": ["bastion.example.com"]}]}


def server_json(state: str = "running", ca: bool = False) -> str:
    services = {"server": {"service_version": "7.9.5", "state": state},
                "status-service": {"state": "running", "status": {"experimental": {"jvm-metrics": {
                    "up-time-ms": 60000, "heap-memory": {"used": 200 * 2**20, "max": 495 * 2**20}}}}}}
    if ca:
        services["ca"] = {"state": "running"}
    return json.dumps(services)


def code(commit: str = HEAD, success: bool = True) -> str:
    return f'production {{"signature": "{commit}", "deploy_success": {json.dumps(success)}, ' \
           f'"finished_at": "2026-11-29 10:00:00 +0000"}}'


def api_date(days: float) -> str:
    return (NOW + timedelta(days=days)).strftime("%Y-%m-%dT%H:%M:%SUTC")


def ca_files(ca_days: float, crl_days: float) -> tuple[str, str]:
    """A CA certificate and its CRL (PEM) that run out in ``ca_days`` and ``crl_days``."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Puppet CA: main.example.com")])
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(1).not_valid_before(NOW - timedelta(days=1))
            .not_valid_after(NOW + timedelta(days=ca_days)).sign(key, hashes.SHA256()))
    crl = (x509.CertificateRevocationListBuilder().issuer_name(name)
           .last_update(NOW - timedelta(days=1)).next_update(NOW + timedelta(days=crl_days))
           .sign(key, hashes.SHA256()))
    return (cert.public_bytes(serialization.Encoding.PEM).decode(),
            crl.public_bytes(serialization.Encoding.PEM).decode())


def ca_listing(extra: list[dict] | None = None, ca_days: float = 5000, crl_days: float = 5000) -> str:
    listing = [{"name": n, "state": "signed", "not_after": api_date(1800),
                "fingerprint": "AA:BB"} for n in (MAIN, C1, C2, *AGENTS)] + (extra or [])
    cert, crl = ca_files(ca_days + 0.5, crl_days + 0.5)
    return (f"{json.dumps(listing)}\n@@puppetops-http 200\n@@puppetops-status-part\n"
            f"{cert}@@puppetops-status-part\n{crl}")


HAPROXY_STATE = """1
# be_id be_name srv_id srv_name srv_addr srv_op_state srv_admin_state srv_uweight srv_iweight srv_time_since_last_change srv_check_status srv_check_result srv_check_health srv_check_state srv_agent_state bk_f_forced_id srv_f_forced_id srv_fqdn srv_port srvrecord srv_use_ssl srv_check_port srv_check_addr srv_agent_addr srv_agent_port
3 puppet_compilers 1 compiler1.example.com 10.0.0.12 {op1} {admin1} 1 1 23 15 3 4 6 0 0 0 compiler1.example.com 8140 - 0 0 - - 0
3 puppet_compilers 2 compiler2.example.com 10.0.0.13 {op2} {admin2} 1 1 22 15 3 0 14 0 0 0 compiler2.example.com 8140 - 0 0 - - 0
"""
HAPROXY_STAT = """# pxname,svname,qcur,qmax,scur,smax,slim,stot,bin,bout,dreq,dresp,ereq,econ,eresp,wretr,wredis,status,weight,act,check_status,check_code
puppet,FRONTEND,,,0,3,9985,8,121530,33472,0,0,0,,,,,OPEN,,,,
puppet_compilers,compiler1.example.com,0,0,3,1,,4,43159,17685,,0,,0,0,0,0,{status1},1,1,L7OK,200
puppet_compilers,compiler2.example.com,0,0,1,1,,4,78371,15787,,0,,0,0,0,0,{status2},1,1,L7OK,200
puppet_compilers,BACKEND,0,0,0,2,999,8,121530,33472,0,0,,0,0,0,0,UP,1,1,,
"""


def haproxy(op2: int = 2, admin2: int = 0, status2: str = "UP", records: str = "") -> str:
    """HAProxy's answers, then the out records on the LB host (``MEMBER.json:JSON`` lines)."""
    return (HAPROXY_STATE.format(op1=2, admin1=0, op2=op2, admin2=admin2)
            + "@@puppetops-haproxy-show-stat\n"
            + HAPROXY_STAT.format(status1="UP", status2=status2)
            + "\n@@puppetops-status-part\n" + records)


def summary(hours_ago: float = 0.2, failed: int = 0) -> str:
    last = int((NOW - timedelta(hours=hours_ago)).timestamp())
    return (f"---\nversion:\n  puppet: 7.23.0\nresources:\n  changed: 2\n  failed: {failed}\n"
            f"  failed_to_restart: 0\n  total: 9\ntime:\n  last_run: {last}\nevents:\n"
            f"  failure: {failed}\n")


def printed(**found: str) -> str:
    """What a host's status script prints: each section's output after its marker."""
    return "".join(f"\n{MARK} {name}\n{text}\n" for name, text in found.items())


def healthy_fleet() -> dict[str, dict[str, str]]:
    return {
        MAIN: {"server": server_json(ca=True), "code": code(), "ca": ca_listing(),
               "webhook": "absent", "puppetdb": "absent"},
        C1: {"server": server_json(), "code": code()},
        C2: {"server": server_json(), "code": code()},
        LB: {"lb": haproxy()},
        AGENTS[0]: {"agent": summary()},
        AGENTS[1]: {"agent": summary()},
    }


def run_status(fleet: dict[str, dict[str, str]], **params) -> tuple[PlanTester, dict]:
    tester = PlanTester(INVENTORY)

    def respond(target: str, command: str, stdin) -> CommandOutput:
        return CommandOutput(command, 0, printed(**fleet[target]), "", 0.0)

    tester.on(re.compile(re.escape(MARK)), respond=respond)
    tester.on("true", targets=["bastion.example.com"])
    found = tester.run_plan(status, **params)
    return tester, found


def test_a_healthy_fleet_is_read_with_one_remote_command_per_host():
    tester, found = run_status(healthy_fleet())
    doc = found.document
    assert found.ok and doc["healthy"] and doc["findings"] == [], doc["findings"]
    for host in [*healthy_fleet(), "bastion.example.com"]:
        assert len(tester.commands(host)) == 1, (host, tester.commands(host))
        assert doc["hosts"][host]["health"] == "ok"
    main_script = tester.commands(MAIN)[0]
    assert "/status/v1/services?level=debug" in main_script and "certificate_statuses" in main_script
    assert doc["environments"]["production"] == {
        "servers": {MAIN: HEAD, C1: HEAD, C2: HEAD}, "agree": True, "commit": HEAD}
    assert doc["loadbalancers"][LB]["members"][C1] == {"state": "UP", "sessions": 3,
                                                       "detail": "UP L7OK"}
    assert doc["hosts"][MAIN]["server"]["heap_max"] == 495 * 2**20
    assert doc["agents"]["source"] == "agents" and len(doc["agents"]["nodes"]) == 2
    assert doc["puppetdb"] is None  # not in use on main: skipped, not an error
    json.dumps(doc)  # plain data


def test_a_compiler_whose_puppet_server_does_not_answer_is_named():
    fleet = healthy_fleet()
    fleet[C2]["server"] = "curl: (7) Failed to connect to compiler2.example.com port 8140"
    fleet[LB]["lb"] = haproxy(op2=0, status2="DOWN")
    _, found = run_status(fleet)
    assert not found.ok
    culprits = found.attention()
    assert any(line.startswith(f"{C2}: Puppet Server not answering") for line in culprits)
    assert any(f"member {C2} is DOWN" in line for line in culprits)
    assert found.document["hosts"][C2]["health"] == "error"
    assert found.document["hosts"][C1]["health"] == "ok"


def test_servers_at_different_commits_name_the_environment_and_the_odd_server():
    fleet = healthy_fleet()
    fleet[C1]["code"] = code("8a2daa86bb87" + "0" * 28)
    _, found = run_status(fleet)
    assert not found.ok
    env = found.document["environments"]["production"]
    assert env["agree"] is False and env["commit"] == HEAD
    assert found.attention() == [f"environment production: servers disagree: {C1} at "
                                 f"8a2daa86bb87 (main at {HEAD[:12]})"]
    assert found.document["hosts"][C1]["health"] == "error"


@pytest.mark.parametrize("days, severity", [(10, "error"), (29, "error"), (60, "warning"),
                                            (89, "warning"), (91, None), (-3, "error")])
def test_certificate_expiry_warns_under_90_days_and_is_an_error_under_30(days, severity):
    fleet = healthy_fleet()
    fleet[MAIN]["ca"] = ca_listing([{"name": "short.example.com", "state": "signed",
                                     "not_after": api_date(days + 0.5)}])
    _, found = run_status(fleet)
    about = [f for f in found.document["findings"]
             if f["subject"] == "certificate short.example.com"]
    assert [f["severity"] for f in about] == ([severity] if severity else [])
    assert found.ok is (severity != "error")
    if days < 0:
        assert "expired" in about[0]["message"]


def test_the_ca_certificate_and_crl_expiry_and_thresholds_are_configurable():
    fleet = healthy_fleet()
    fleet[MAIN]["ca"] = ca_listing(ca_days=100, crl_days=20)
    _, found = run_status(fleet)
    assert found.attention() == [f"CA CRL: next update due in 20 days "
                                 f"({found.document['ca']['crl_next_update']})"]
    _, found = run_status(fleet, warn_days=200, error_days=150)
    subjects = {(f["subject"], f["severity"]) for f in found.document["findings"]}
    assert {("CA certificate", "error"), ("CA CRL", "error")} <= subjects
    assert ("certificate agent1.example.com", "warning") not in subjects  # 1800 days left


def test_pending_requests_are_listed_with_their_fingerprint_as_a_warning():
    fleet = healthy_fleet()
    fleet[MAIN]["ca"] = ca_listing([{"name": "new.example.com", "state": "requested",
                                     "fingerprint": "12:34:AB"}])
    _, found = run_status(fleet)
    assert found.ok and found.document["ca"]["pending"] == [
        {"name": "new.example.com", "fingerprint": "12:34:AB"}]
    assert found.attention("warning") == [
        "certificate request new.example.com: pending on the CA (fingerprint 12:34:AB)"]


def test_agents_that_failed_or_went_quiet_need_attention():
    fleet = healthy_fleet()
    fleet[AGENTS[0]]["agent"] = summary(hours_ago=3)
    fleet[AGENTS[1]]["agent"] = summary(failed=1)
    _, found = run_status(fleet)
    lines = found.attention()
    assert any(line.startswith(f"agent {AGENTS[0]}: has not reported for 2 hours")
               for line in lines)
    assert any(line.startswith(f"agent {AGENTS[1]}: its last run failed") for line in lines)
    _, found = run_status(fleet, unreported_hours=4)  # the window is configurable
    assert not any(AGENTS[0] in line for line in found.attention())


def test_maintenance_is_a_warning_but_no_member_up_is_an_error():
    fleet = healthy_fleet()
    record = json.dumps({"member": C2, "who": "ops@admin1", "when": "2026-11-29T08:00:00Z",
                         "run": "4f1c2a9b7e01", "why": {"plan": "rotate_lb_member",
                                                        "reason": "maintenance"}})
    fleet[LB]["lb"] = haproxy(admin2=1, status2="MAINT", records=f"{C2}.json:{record}\n")
    _, found = run_status(fleet)
    assert found.ok and found.attention("warning") == [
        f"{LB}: member {C2} is in MAINT: {C2} is maint, taken out by rotate_lb_member in run "
        f"4f1c2a9b7e01, ops@admin1, 2026-11-29T08:00:00Z; once its Puppet Server is healthy, "
        f"`invoke lb-ready --targets {C2}` puts it back"]
    assert found.document["loadbalancers"][LB]["members"][C2]["state"] == "MAINT"
    fleet[LB]["lb"] = haproxy(admin2=1, status2="MAINT")  # by hand: no record
    _, found = run_status(fleet)
    assert "with no puppetops record (taken out by hand?)" in found.attention("warning")[0]


def test_puppetdb_in_use_gives_the_agents_reports():
    fleet = healthy_fleet()
    nodes = [{"certname": AGENTS[0], "report_timestamp": (NOW - timedelta(minutes=5)).isoformat(),
              "latest_report_status": "unchanged", "deactivated": None},
             {"certname": "gone.example.com", "report_timestamp":
              (NOW - timedelta(days=2)).isoformat(), "latest_report_status": "changed",
              "deactivated": None}]
    fleet[MAIN]["puppetdb"] = (json.dumps({"state": "running", "service_version": "7.12.1"})
                               + "\n@@puppetops-status-part\n" + json.dumps(nodes))
    _, found = run_status(fleet)
    doc = found.document
    assert doc["puppetdb"] == {"host": MAIN, "state": "running", "version": "7.12.1"}
    assert doc["agents"]["source"] == "puppetdb"
    assert {n["name"] for n in doc["agents"]["nodes"]} == {*AGENTS, "gone.example.com"}
    assert sorted(found.attention()) == [
        f"agent {AGENTS[1]}: has never reported",
        f"agent gone.example.com: has not reported for 2 hours "
        f"(last {nodes[1]['report_timestamp']})"]


def test_an_unreachable_host_is_an_error_and_every_host_is_in_the_document():
    fleet = healthy_fleet()
    tester = PlanTester(INVENTORY)
    tester.on(re.compile(re.escape(MARK)), respond=lambda t, c, s: CommandOutput(
        c, 0, printed(**fleet[t]), "", 0.0))
    tester.on("true", targets=["bastion.example.com"], exit_code=255,
              stderr="ssh: connect to host bastion.example.com port 22: Connection refused")
    found = tester.run_plan(status)
    assert not found.ok
    assert found.document["hosts"]["bastion.example.com"]["health"] == "error"
    assert set(found.document["hosts"]) == {*healthy_fleet(), "bastion.example.com"}



def test_an_unreachable_compiler_is_still_shown_and_drawn_as_a_compiler():
    fleet = healthy_fleet()
    tester = PlanTester(INVENTORY)
    tester.on(re.compile(re.escape(MARK)), respond=lambda t, c, s: CommandOutput(
        c, 0, printed(**fleet[t]), "", 0.0))
    tester.on(re.compile(re.escape(MARK)), targets=[C2], exit_code=255,
              stderr=f"ssh: connect to host {C2} port 22: Connection refused")
    found = tester.run_plan(status)
    host = found.document["hosts"][C2]
    assert (host["health"], host["roles"]) == ("error", ["compilers"])
    assert f'["{C2}<br/>compiler"]:::error' in mermaid(found.document)

def test_nginx_members_are_read_from_its_config_and_probes():
    config = ("stream {\n    upstream puppet_compilers {\n        least_conn;\n"
              f"        server 10.0.0.12:8140 max_fails=3 fail_timeout=30s;  # {C1}\n"
              f"        server 10.0.0.13:8140 max_fails=3 fail_timeout=30s down;  # {C2}\n"
              "    }\n}\n")
    text = f"{config}@@puppetops-nginx-members\n{C1} running 4\n{C2} none 0\n"
    from puppetops.steps.lb.nginx import Nginx
    states = Nginx().parse_states(text)
    assert (states[C1].admin, states[C1].up, states[C1].sessions) == ("ready", True, 4)
    assert (states[C2].admin, states[C2].up) == ("maint", False)


def test_a_section_that_does_not_parse_is_that_sections_error_only():
    from puppetops.errors import StepError
    with pytest.raises(StepError, match="status API did not answer: curl: \\(7\\)"):
        sections.parse_server("curl: (7) Failed to connect")
    from puppetops.steps.status.script import Section, parse
    found = parse(printed(a="not json", b="fine"),
                  [Section("a", "", sections.parse_server), Section("b", "", str.upper),
                   Section("c", "", str.upper)])
    assert found["b"] == "FINE" and "error" in found["a"]
    assert found["c"] == {"error": "no output"}


def test_mermaid_draws_the_fleet_and_names_every_host_coloured_by_health():
    fleet = healthy_fleet()
    fleet[C2]["server"] = "curl: (7) Failed to connect"
    fleet[MAIN]["webhook"] = json.dumps({"status": "ok", "deploys": {"ok": 3}})
    _, found = run_status(fleet)
    text = mermaid(found.document)
    assert text.startswith("flowchart LR\n")
    for host in found.document["hosts"]:
        assert host in text
    assert "root@main.example.com:/srv/puppet/control.git" in text
    assert re.search(r'h2\["compiler2\.example\.com<br/>compiler"\]:::error', text), text
    assert re.search(r'h1\["compiler1\.example\.com<br/>compiler"\]:::ok', text), text
    assert "repo -- git push --> webhook" in text and 'agents{{"2 agent(s)' in text
    for health in ("ok", "warning", "error"):
        assert f"classDef {health} " in text


def test_mermaid_labels_cannot_break_out_of_their_quotes():
    doc = assess({}, {}, now=NOW, control_repo='git@x:"a"<b>\nflowchart')
    text = mermaid(doc)
    assert 'repo[("control repo<br/>git@x:#quot;a#quot;#lt;b#gt; flowchart")]' in text
    assert text.count("\n") == len(text.splitlines())


def test_many_agents_are_counted_and_listed_in_comments():
    names = [f"agent{i}.example.com" for i in range(20)]
    hosts = {n: {"roles": ["agents"], "certname": n, "agent": {"last_report": NOW.isoformat(),
                                                               "status": "unchanged"}}
             for n in names}
    text = mermaid(assess(hosts, {}, now=NOW))
    assert 'agents{{"20 agent(s)"}}:::ok' in text
    assert all(f"%% agent {n}" in text for n in names)


def test_the_table_says_healthy_or_what_needs_attention():
    _, found = run_status(healthy_fleet())
    text = table(found.document)
    assert text.splitlines()[0].endswith("HEALTHY: 7 host(s)")
    assert "production" in text and "UP" in text and "Needs attention" not in text
    fleet = healthy_fleet()
    fleet[C1]["code"] = code("0" * 40)
    _, found = run_status(fleet)
    text = table(found.document)
    assert "NEEDS ATTENTION: 7 host(s), 1 error(s)" in text
    assert "ERROR   environment production: servers disagree" in text


def test_error_days_above_warn_days_is_a_usage_error():
    from puppetops.errors import UsageError
    with pytest.raises(UsageError, match="error_days"):
        run_status(healthy_fleet(), warn_days=10, error_days=30)


def test_thresholds_default_to_90_and_30_days_and_2_hours():
    assert Thresholds() == Thresholds(90, 30, 2)


@pytest.mark.slow
def test_mermaid_s_own_parser_accepts_the_diagram_and_refuses_a_broken_one():
    import mermaid_parser
    fleet = healthy_fleet()
    fleet[C2]["server"] = "curl: (7) Failed to connect"
    fleet[MAIN]["webhook"] = json.dumps({"status": "ok", "deploys": {}})
    _, found = run_status(fleet)
    doc = found.document
    doc["control_repo"] = 'git@example.com:"ops"/<control>.git'  # quotes and brackets escaped
    assert mermaid_parser.parse(mermaid(doc)) == {"ok": True, "diagramType": "flowchart-v2"}
    broken = mermaid_parser.parse(mermaid(doc).replace("-->", "--", 1))
    assert broken["ok"] is False and "error on line" in broken["error"]


# -- the command, as a real process on real sshd hosts ------------------------------------------

@pytest.fixture
def fleet_inventory(sshd_fleet, tmp_path):
    fleet = sshd_fleet(count=3)
    return fleet, str(fleet.write_inventory(tmp_path / "inventory.yaml"))


@pytest.mark.slow
def test_status_command_json_and_mermaid_name_every_host_and_exit_0(fleet_inventory):
    from helpers import cli
    fleet, inv = fleet_inventory
    proc = cli("status", "-i", inv, "--format", "json")
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["ok"] and doc["status"]["healthy"]
    assert set(doc["status"]["hosts"]) == {"host1", "host2", "host3"}
    drawn = cli("status", "-i", inv, "-f", "mermaid")
    assert drawn.returncode == 0 and drawn.stdout.startswith("flowchart LR\n")
    assert all(f'"host{i}<br/>other host"' in drawn.stdout for i in (1, 2, 3))
    assert not (Path(inv).parent / ".puppetops").exists()  # no rerun file: it changed nothing


@pytest.mark.slow
@pytest.mark.reliability(fault="a host of the inventory unreachable during status",
                         outcome="exit 1 naming the host; the others' status still shown")
def test_status_command_exits_1_naming_an_unreachable_host(fleet_inventory):
    from helpers import cli
    fleet, inv = fleet_inventory
    fleet.stop_host(1)
    proc = cli("status", "-i", inv, "--attempts", "1")
    assert proc.returncode == 1
    assert "error: needs attention: host2: unreachable" in proc.stderr
    assert re.search(r"^host1 +- +ok", proc.stdout, re.M), proc.stdout


@pytest.mark.slow
@pytest.mark.parametrize("args, expected", [
    (("status", "--format", "yaml"), "error: --format: expected one of human, json, mermaid"),
    (("deploy-code", "--format", "mermaid"), "error: --format: expected one of human, json"),
    (("status", "--warn-days", "10", "--error-days", "30"), "error: error_days (30) must not"),
    (("status", "--warn-days", "0"), "error: --warn-days: expected an integer of at least 1"),
])
def test_status_usage_errors_exit_2(fleet_inventory, args, expected):
    from helpers import cli
    fleet, inv = fleet_inventory
    proc = cli(*args, "-i", inv)
    assert proc.returncode == 2 and proc.stderr.strip().splitlines()[-1].startswith(expected), \
        proc.stderr


def test_an_environment_missing_on_a_server_or_without_any_commit_is_named():
    fleet = healthy_fleet()
    fleet[C2]["code"] = code() + "\n" + code().replace("production", "feature", 1)
    fleet[MAIN]["code"] = code() + '\nbroken {"deploy_success": false}'
    _, found = run_status(fleet)
    assert found.document["environments"]["feature"]["agree"] is False
    assert f"environment feature: servers disagree: {C1} at nothing, {MAIN} at nothing " \
        f"(the others at {HEAD[:12]})" in found.attention()
    assert f"environment broken: last deploy failed on {MAIN}" in found.attention()
