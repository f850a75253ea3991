"""SSH transport against real sshd daemons on loopback: keys, reuse, retries, sudo."""
from __future__ import annotations

import json
import socket
import subprocess
import threading
import time

import paramiko
import pytest

from puppetops import Inventory, Run
from puppetops.result import CHANGED, FAILED, OK, UNCHANGED, UNREACHABLE
from puppetops.steps import FileContent, RunCommand

from helpers import cli, fleet_run


@pytest.mark.slow
def test_fan_out_to_30_hosts_gives_each_target_its_own_result(sshd_fleet30):
    with fleet_run(sshd_fleet30) as run:
        rs = run.command("echo $SSH_CONNECTION", "fleet")
    assert len(rs) == 30 and rs.ok
    for host, result in zip(sshd_fleet30.hosts, rs):
        assert result.target == host.name
        assert result.status == OK and result.exit_code == 0
        # sshd reports the address it was reached on: proves each result came from its own host
        assert result.stdout.split()[2] == host.address


def test_a_multi_step_plan_makes_one_handshake_per_target(sshd_fleet):
    fleet = sshd_fleet(count=4)
    before = [fleet.connection_count(i) for i in range(4)]
    with fleet_run(fleet) as run:
        for i in range(5):
            assert run.command(f"echo step{i}", "fleet").ok
        handshakes = run.pool.handshakes()
    assert set(handshakes.values()) == {1}
    for i in range(4):  # sshd's own log agrees: one accepted connection per host for 5 steps
        assert fleet.wait_for_connection_count(i, before[i] + 1) == before[i] + 1


@pytest.mark.slow
def test_a_host_whose_sshd_starts_late_succeeds_after_retries(sshd_fleet):
    fleet = sshd_fleet(count=3)
    fleet.stop_host(1)
    fleet.start_host(1, delay=2.0)
    with fleet_run(fleet, attempts=6) as run:
        rs = run.command("true", "fleet")
    result = rs.find("host2")
    assert rs.ok and result.attempts > 1


def test_a_host_that_never_answers_fails_after_its_attempts_while_others_succeed(sshd_fleet):
    fleet = sshd_fleet(count=3)
    fleet.stop_host(2)
    with fleet_run(fleet, attempts=3) as run:
        rs = run.command("true", "fleet", catch_errors=True)
    dead = rs.find("host3")
    assert dead.status == UNREACHABLE and dead.attempts == 3
    assert "connection refused" in dead.message
    assert [r.status for r in rs if r.target != "host3"] == [OK, OK]


def keygen_fingerprint(public_key_file) -> str:
    """The fingerprint as ``ssh-keygen -l`` prints it (what an operator compares with)."""
    out = subprocess.run(["ssh-keygen", "-l", "-f", str(public_key_file)], capture_output=True,
                         text=True, check=True).stdout
    return out.split()[1]


def test_a_changed_host_key_is_refused_and_not_retried(sshd_fleet):
    fleet = sshd_fleet(count=2)
    old = keygen_fingerprint(f"{fleet.hosts[0].host_key_path}.pub")
    fleet.regenerate_host_key(0)
    new = keygen_fingerprint(f"{fleet.hosts[0].host_key_path}.pub")
    with fleet_run(fleet) as run:
        rs = run.command("true", "fleet", catch_errors=True)
    bad = rs.find("host1")
    assert bad.status == UNREACHABLE and bad.attempts == 1
    assert (f"has CHANGED (got ssh-ed25519 {new}, known_hosts has ssh-ed25519 {old})"
            in bad.message), bad.message
    assert new.startswith("SHA256:")
    assert rs.find("host2").status == OK


@pytest.mark.slow
@pytest.mark.reliability(fault="host slower to authenticate than connect-timeout",
                         outcome="retried as a transient fault, then unreachable: timed out")
def test_an_authentication_timeout_is_retried_as_transient(tmp_path):
    from puppetops.testing.fixtures import require_sshd
    from puppetops.testing.sshd import SshdFleet
    require_sshd()
    workdir = tmp_path / "slow-auth"
    # sshd finds the key only through a command that takes 3 s (the key file is emptied)
    slow = [f"AuthorizedKeysCommand /bin/sh -c 'sleep 3; cat {workdir}/client_ed25519.pub' %u",
            "AuthorizedKeysCommandUser root"]
    with SshdFleet(workdir, count=1, port=None, extra_sshd_config=slow) as fleet:
        (fleet.authorized_keys_dir / fleet.user).write_text("")
        with fleet_run(fleet, attempts=2, extra_config={"connect-timeout": 1}) as run:
            rs = run.command("true", "fleet", catch_errors=True)
    assert (rs[0].status, rs[0].attempts) == (UNREACHABLE, 2)
    assert rs[0].message == f"authentication to {fleet.hosts[0].address}:{fleet.port} timed out"


@pytest.mark.reliability(fault="programming error while connecting (AttributeError)",
                         outcome="that target failed as an internal error, tried once; "
                                 "never reported as unreachable")
def test_a_bug_while_connecting_is_an_internal_error_not_an_unreachable_host(sshd_fleet,
                                                                             monkeypatch):
    fleet = sshd_fleet(count=2)
    broken = fleet.hosts[1].address
    real_connect = paramiko.SSHClient.connect

    def connect(client, hostname, *args, **kwargs):
        if hostname == broken:  # what Fabric's shared-config race raised
            raise AttributeError("No attribute or config key found for 'gateway'")
        return real_connect(client, hostname, *args, **kwargs)

    monkeypatch.setattr(paramiko.SSHClient, "connect", connect)
    with fleet_run(fleet, attempts=3) as run:
        rs = run.command("true", "fleet", catch_errors=True)
    bad = rs.find("host2")
    assert (bad.status, bad.attempts) == (FAILED, 1)
    assert bad.message == ("internal error: AttributeError: No attribute or config key found "
                           "for 'gateway'")
    assert rs.find("host1").status == OK


def test_an_unknown_host_key_is_refused_unless_checking_is_turned_off(sshd_fleet, tmp_path):
    fleet = sshd_fleet(count=1)
    empty = tmp_path / "empty_known_hosts"
    empty.write_text("")
    with fleet_run(fleet, extra_config={"known-hosts-file": str(empty)}) as run:
        rs = run.command("true", "fleet", catch_errors=True)
    assert rs[0].status == UNREACHABLE and "not in the known_hosts" in rs[0].message
    fingerprint = keygen_fingerprint(f"{fleet.hosts[0].host_key_path}.pub")
    assert f"(ssh-ed25519 {fingerprint})" in rs[0].message
    with fleet_run(fleet, extra_config={"known-hosts-file": str(empty),
                                        "host-key-check": False}) as run:
        assert run.command("true", "fleet").ok


@pytest.mark.slow
def test_a_command_timeout_fails_the_target_instead_of_hanging(sshd_fleet):
    fleet = sshd_fleet(count=2)
    with fleet_run(fleet) as run:
        start = time.monotonic()
        rs = run.step(RunCommand("sleep 30", timeout=1), "fleet", catch_errors=True)
    assert time.monotonic() - start < 10
    assert all(r.status == "failed" and "timed out" in r.message for r in rs)


@pytest.mark.slow
def test_a_silent_host_times_out_at_connect(sshd_fleet):
    fleet = sshd_fleet(count=1)
    hole = fleet.blackhole_host()
    inv = fleet.inventory_dict()
    inv["groups"][0]["targets"].append({"name": "hole", "uri": f"{hole.address}:{hole.port}",
                                        "config": {"ssh": {"connect-timeout": 1}}})
    with Run(Inventory.from_dict(inv), attempts=2, backoff=0.1) as run:
        start = time.monotonic()
        rs = run.command("true", "fleet", catch_errors=True)
    assert time.monotonic() - start < 15
    assert rs.find("hole").status == UNREACHABLE and rs.find("host1").status == OK


@pytest.mark.serial("the local user pops and /tmp/puppetops-sudo-test")
def test_run_as_uses_sudo_with_the_password_from_the_environment_and_masks_it(
        sshd_fleet, tmp_path, monkeypatch):
    fleet = sshd_fleet(count=2)
    password = "s3cret-Pa55-xyz"
    fleet.add_sudo_user("pops", password)
    monkeypatch.setenv("POPS_SUDO_PW", password)
    extra = {"user": "pops", "run-as": "root",
             "sudo-password": {"_plugin": "env_var", "var": "POPS_SUDO_PW"}}
    from puppetops.output import LogFileOutput, Output
    log = tmp_path / "run.log"
    with fleet_run(fleet, extra_config=extra, output=Output(LogFileOutput(str(log)))) as run:
        rs = run.command(f"id -un; echo {password}", "fleet")
        written = run.step(FileContent("/tmp/puppetops-sudo-test", "x\n"), "fleet")
    assert rs.ok and all(r.stdout.splitlines()[0] == "root" for r in rs)
    assert written.ok
    text = log.read_text() + json.dumps(rs.to_dict())
    assert password not in text and "********" in text


@pytest.mark.serial("the local user popsnopw")
@pytest.mark.reliability(fault="run-as needs a sudo password and none is configured",
                         outcome="that host failed (reached, sudo refused) with what to set; "
                                 "nothing run there; the others' results kept")
def test_a_missing_sudo_password_fails_the_host_it_does_not_call_it_unreachable(sshd_fleet):
    fleet = sshd_fleet(count=2)
    fleet.add_sudo_user("popsnopw", "An0ther-s3cret")
    inv = fleet.inventory_dict()
    inv["groups"][0]["targets"][0].setdefault("config", {})["ssh"] = {
        "user": "popsnopw", "run-as": "root"}
    with Run(Inventory.from_dict(inv), backoff=0.1) as run:
        rs = run.command("id -un", "fleet", catch_errors=True)
    first, second = (rs.find(t["name"]) for t in inv["groups"][0]["targets"][:2])
    assert first.status == FAILED and first.attempts == 1
    assert "sudo needs a password and no sudo-password is configured" in first.message
    assert second.status == OK


def test_noop_reports_changes_and_changes_nothing(sshd_fleet, tmp_path):
    fleet = sshd_fleet(count=2)
    path = str(tmp_path / "noop-target.txt")
    with fleet_run(fleet, noop=True) as run:
        rs = run.step(FileContent(path, "hello\n"), "fleet")
    assert all(r.status == CHANGED and r.noop and "would create" in r.message for r in rs)
    assert not (tmp_path / "noop-target.txt").exists()
    with fleet_run(fleet) as run:
        first = run.step(FileContent(path, "hello\n"), ["host1"])
        again = run.step(FileContent(path, "hello\n"), ["host1"])
    assert first[0].status == CHANGED and again[0].status == UNCHANGED


def test_call_steps_return_values(sshd_fleet):
    fleet = sshd_fleet(count=2)
    with fleet_run(fleet) as run:
        rs = run.each("whoami", lambda ctx: ctx.run("id -u").stdout.strip(), "fleet")
    assert [r.value for r in rs] == ["0", "0"]


def test_each_ssh_target_is_a_fabric_connection_kept_open_for_the_run(sshd_fleet):
    from fabric import Connection as FabricConnection
    fleet = sshd_fleet(count=2)
    with fleet_run(fleet) as run:
        run.command("true", "fleet")
        conns = [run.pool.get(t) for t in run.targets("fleet")]
        assert all(isinstance(c.fabric, FabricConnection) and c.fabric.is_connected for c in conns)
    assert all(c.fabric is None for c in conns)  # closed with the run


def test_hashed_known_hosts_entries_are_verified_too(sshd_fleet, tmp_path):
    import shutil
    import subprocess
    fleet = sshd_fleet(count=2)
    hashed = tmp_path / "known_hosts_hashed"
    shutil.copy(fleet.known_hosts_path, hashed)
    subprocess.run(["ssh-keygen", "-H", "-f", str(hashed)], check=True, capture_output=True)
    assert "|1|" in hashed.read_text()  # Debian's client default: names stored as HMACs
    with fleet_run(fleet, extra_config={"known-hosts-file": str(hashed)}) as run:
        assert run.command("true", "fleet").ok
    fleet.regenerate_host_key(1)
    with fleet_run(fleet, extra_config={"known-hosts-file": str(hashed)}) as run:
        rs = run.command("true", "fleet", catch_errors=True)
    assert rs.find("host1").status == OK
    assert rs.find("host2").status == UNREACHABLE and "CHANGED" in rs.find("host2").message


@pytest.mark.slow
@pytest.mark.reliability(fault="a port that answers but does not speak SSH",
                         outcome="that target unreachable with paramiko's reason in one line; "
                                 "no traceback on stderr")
def test_a_port_that_does_not_speak_ssh_is_one_line_not_a_traceback(tmp_path):
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)

    def answer_garbage() -> None:
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            with conn:
                conn.sendall(b"garbage\r\n")

    threading.Thread(target=answer_garbage, daemon=True).start()
    (tmp_path / "known_hosts").write_text("")
    (tmp_path / "inventory.yaml").write_text(
        f"config: {{ssh: {{known-hosts-file: {tmp_path}/known_hosts, attempts: 1}}}}\n"
        f"targets: [{{name: h, uri: '127.0.0.1:{server.getsockname()[1]}'}}]\n")
    try:
        proc = cli("command", "true", "-t", "h", "-i", str(tmp_path / "inventory.yaml"))
    finally:
        server.close()
    assert proc.returncode == 1, proc.stderr
    assert "h: unreachable" in proc.stderr and "banner" in proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr
