"""Tests of the loopback sshd fleet itself, driven by the plain OpenSSH client (and paramiko
where a kept-open connection is the point). These prove the test bed before anything else
relies on it: host keys are checked, restarts and late starts behave, nothing is left running."""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Optional

import paramiko
import pytest
import yaml

from puppetops import procs
from puppetops.testing import sshd as sshd_mod
from puppetops.testing.fixtures import require_root
from puppetops.testing.sshd import SshdFleet, SudoUnavailableError

# Real users are machine-global and several test runs share this box: names unique per run.
RUN_TAG = os.getpid() % 100000


def ssh(fleet: SshdFleet, i: int, command: str = "true", user: Optional[str] = None,
        input: Optional[str] = None, options: tuple = ()) -> subprocess.CompletedProcess:
    return subprocess.run(fleet.ssh_argv(i, command, user=user, options=options),
                          input=input, capture_output=True, text=True, timeout=30,
                          stdin=None if input is not None else subprocess.DEVNULL)


def paramiko_client(fleet: SshdFleet, i: int) -> paramiko.SSHClient:
    client = paramiko.SSHClient()
    client.load_host_keys(str(fleet.known_hosts_path))
    client.set_missing_host_key_policy(paramiko.RejectPolicy())
    host = fleet.hosts[i]
    client.connect(host.address, port=host.port, username=fleet.user, key_filename=str(fleet.client_key_path),
                   look_for_keys=False, allow_agent=False, timeout=10)
    return client


@pytest.mark.slow
def test_thirty_hosts_answer(sshd_fleet30: SshdFleet) -> None:
    fleet = sshd_fleet30
    assert [h.address for h in fleet.hosts] == [f"127.0.1.{n}" for n in range(1, 31)]
    known = fleet.known_hosts_path.read_text().splitlines()
    assert len(known) == 30
    assert known[4].startswith(f"[127.0.1.5]:{fleet.port} ssh-ed25519 ")
    before = [fleet.connection_count(i) for i in range(30)]
    with ThreadPoolExecutor(10) as pool:
        results = list(pool.map(lambda i: ssh(fleet, i, "echo ok"), range(30)))
    assert [(r.returncode, r.stdout) for r in results] == [(0, "ok\n")] * 30, [r.stderr for r in results]
    # each host's own daemon served exactly its own connection
    assert [fleet.wait_for_connection_count(i, before[i] + 1) for i in range(30)] == [b + 1 for b in before]
    assert all(h.pid and procs.alive(h.pid) for h in fleet.hosts)
    assert int(fleet.hosts[0].pid_path.read_text()) == fleet.hosts[0].pid


def test_connection_count_one_per_connection(sshd_fleet30: SshdFleet) -> None:
    fleet = sshd_fleet30
    start = fleet.connection_count(7)
    for n in range(1, 4):
        assert ssh(fleet, 7).returncode == 0
        assert fleet.wait_for_connection_count(7, start + n) == start + n
    # three commands on one kept-open connection count once
    client = paramiko_client(fleet, 7)
    try:
        for _ in range(3):
            _, out, _ = client.exec_command("echo reuse")
            assert out.read() == b"reuse\n"
    finally:
        client.close()
    assert fleet.wait_for_connection_count(7, start + 4) == start + 4
    time.sleep(0.2)
    assert fleet.connection_count(7) == start + 4


def test_setenv_shlvl_skips_bashrc(sshd_fleet30: SshdFleet, sshd_fleet) -> None:
    """``SetEnv SHLVL=1`` keeps bash from sourcing ~/.bashrc (here: ``pyenv init``) for ssh commands."""
    probe = "echo ${PYENV_SHELL-unset}"
    result = ssh(sshd_fleet30, 0, probe)
    assert (result.returncode, result.stdout) == (0, "unset\n"), result.stderr
    assert "SetEnv SHLVL=1" in sshd_fleet30.hosts[0].config_path.read_text()
    bashrc = Path(os.path.expanduser("~/.bashrc"))
    if not (bashrc.exists() and "pyenv init" in bashrc.read_text()):
        pytest.skip("no 'pyenv init' in ~/.bashrc: the control case cannot show a difference")
    control = sshd_fleet(count=1, set_env={})  # same daemon without the trick
    result = ssh(control, 0, probe)
    assert (result.returncode, result.stdout) == (0, "bash\n"), result.stderr


def test_changed_host_key_is_refused(sshd_fleet) -> None:
    fleet = sshd_fleet(count=2)
    assert ssh(fleet, 1).returncode == 0
    old_pid = fleet.hosts[1].pid
    fleet.regenerate_host_key(1)
    assert fleet.hosts[1].pid != old_pid and not procs.alive(old_pid)
    refused = ssh(fleet, 1)
    assert refused.returncode == 255
    assert "REMOTE HOST IDENTIFICATION HAS CHANGED" in refused.stderr
    assert ssh(fleet, 0).returncode == 0  # the other host is untouched
    fleet.regenerate_host_key(1, update_known_hosts=True)
    assert ssh(fleet, 1).returncode == 0


@pytest.mark.slow
def test_delayed_start(sshd_fleet) -> None:
    fleet = sshd_fleet(count=2)
    t0 = time.monotonic()
    fleet.start_host(0, delay=2.0)
    down = ssh(fleet, 0)
    assert down.returncode == 255 and "Connection refused" in down.stderr
    while ssh(fleet, 0).returncode != 0:  # what a retrying client does
        assert time.monotonic() - t0 < 15, "host never came up"
        time.sleep(0.2)
    assert time.monotonic() - t0 >= 1.9
    assert ssh(fleet, 1).returncode == 0


def test_stop_host_then_restart(sshd_fleet) -> None:
    fleet = sshd_fleet(count=2)
    pid = fleet.hosts[0].pid
    fleet.stop_host(0)
    assert fleet.hosts[0].pid is None and not procs.alive(pid)
    assert "Connection refused" in ssh(fleet, 0).stderr
    fleet.start_host(0, wait=True)
    assert ssh(fleet, 0).returncode == 0


def test_stop_host_cancels_pending_delayed_start(sshd_fleet) -> None:
    fleet = sshd_fleet(count=1)
    fleet.start_host(0, delay=0.3)
    fleet.stop_host(0)
    time.sleep(0.6)
    assert fleet.hosts[0].pid is None
    assert "Connection refused" in ssh(fleet, 0).stderr


def test_stop_leaves_no_sshd_alive(sshd_fleet) -> None:
    fleet = sshd_fleet(count=3)
    # a client holding a session open: its per-connection sshd children must die too
    held = subprocess.Popen(fleet.ssh_argv(0, "sleep 60"), stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        assert fleet.wait_for_connection_count(0, 1) == 1
        listeners = [h.pid for h in fleet.hosts]
        children = procs.descendants(listeners[0])
        assert children, "expected per-connection sshd processes under host1's listener"
        fleet.stop()
        assert [p for p in listeners + children if procs.alive(p)] == []
        assert all(h.pid is None for h in fleet.hosts)
        assert held.wait(timeout=10) != 0  # the server went away under it
    finally:
        if held.poll() is None:
            held.kill()
            held.wait()
    workdir = str(fleet.workdir)
    leftovers = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                cmdline = Path(f"/proc/{entry}/cmdline").read_bytes().decode(errors="replace")
            except OSError:
                continue
            if workdir in cmdline and procs.alive(int(entry)):
                leftovers.append(entry)
    assert leftovers == []
    fleet.stop()  # idempotent


def test_kill_stale_uses_pid_files(sshd_fleet) -> None:
    """A fleet whose test process died is cleaned up from its pid files alone."""
    fleet = sshd_fleet(count=2)
    pids = [h.pid for h in fleet.hosts]
    assert sorted(SshdFleet.kill_stale(fleet.workdir)) == sorted(pids)
    assert not any(procs.alive(p) for p in pids)
    assert SshdFleet.kill_stale(fleet.workdir) == []


@pytest.mark.slow
def test_silent_and_blackhole_hosts(sshd_fleet) -> None:
    fleet = sshd_fleet(count=1)
    silent = fleet.silent_host()
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection((silent.address, silent.port), timeout=2)
    hole = fleet.blackhole_host()
    with socket.create_connection((hole.address, hole.port), timeout=2) as sock:
        sock.settimeout(0.5)
        with pytest.raises(socket.timeout):
            sock.recv(1)  # accepted, but no banner ever comes
    argv = ["ssh", "-F", "/dev/null", "-o", "BatchMode=yes", "-o", "ConnectTimeout=1",
            "-p", str(hole.port), f"root@{hole.address}", "true"]
    result = subprocess.run(argv, capture_output=True, text=True, timeout=20)
    assert result.returncode == 255 and "timed out" in result.stderr
    assert hole.uri == f"127.0.0.1:{hole.port}"


def test_inventory_dict_and_file(sshd_fleet, tmp_path: Path) -> None:
    fleet = sshd_fleet(count=3)
    inv = fleet.inventory_dict(group="web", extra_config={"connect-timeout": 5})
    assert inv["config"]["ssh"] == {
        "user": fleet.user, "port": fleet.port, "private-key": str(fleet.client_key_path),
        "known-hosts-file": str(fleet.known_hosts_path), "host-key-check": True, "connect-timeout": 5,
    }
    assert inv["groups"] == [{"name": "web", "targets": [
        {"name": "host1", "uri": "127.0.1.1"}, {"name": "host2", "uri": "127.0.1.2"},
        {"name": "host3", "uri": "127.0.1.3"}]}]
    path = fleet.write_inventory(tmp_path / "inventory.yaml")
    assert yaml.safe_load(path.read_text()) == fleet.inventory_dict()


def test_add_user_logs_in_with_fleet_key(sshd_fleet) -> None:
    require_root("creates a real local user")
    fleet = sshd_fleet(count=1)
    name = f"pops-{RUN_TAG}-login"
    fleet.add_user(name)
    try:
        result = ssh(fleet, 0, "id -un", user=name)
        assert (result.returncode, result.stdout) == (0, f"{name}\n"), result.stderr
        # removal must work even while the user still has a session open
        held = subprocess.Popen(fleet.ssh_argv(0, "echo started; exec sleep 30", user=name),
                                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        assert held.stdout.readline() == b"started\n"
    finally:
        fleet.remove_user(name)
    assert held.wait(timeout=10) != 0
    held.stdout.close()
    assert subprocess.run(["id", name], capture_output=True).returncode != 0
    assert "Permission denied" in ssh(fleet, 0, user=name).stderr


def test_add_sudo_user_without_sudo_raises_clearly(sshd_fleet, monkeypatch: pytest.MonkeyPatch) -> None:
    require_root("add_sudo_user checks root first")
    fleet = sshd_fleet(count=1)
    monkeypatch.setattr(sshd_mod.shutil, "which", lambda name, *a, **k: None)
    with pytest.raises(SudoUnavailableError, match="sudo is not installed"):
        fleet.add_sudo_user(f"pops-{RUN_TAG}-nosudo", "pw")
    assert subprocess.run(["id", f"pops-{RUN_TAG}-nosudo"], capture_output=True).returncode != 0


@pytest.mark.slow
def test_sudo_user_needs_its_password(sshd_fleet) -> None:
    require_root("creates a real local user and a sudoers.d file")
    if not shutil.which("sudo"):
        pytest.skip("sudo is not installed on this machine (`which sudo` is empty)")
    fleet = sshd_fleet(count=1)
    name, password = f"pops-{RUN_TAG}-sudo", "s3cret-Pw"
    fleet.add_sudo_user(name, password)
    sudoers = Path(f"/etc/sudoers.d/puppetops-test-{name}")
    try:
        assert oct(sudoers.stat().st_mode & 0o777) == "0o440"
        ok = ssh(fleet, 0, "sudo -S -p '' true", user=name, input=password + "\n")
        assert ok.returncode == 0, ok.stderr
        whoami = ssh(fleet, 0, "sudo -S -p '' id -u", user=name, input=password + "\n")
        assert whoami.stdout.strip() == "0"
        assert ssh(fleet, 0, "sudo -S -p '' true", user=name, input="").returncode != 0
        assert ssh(fleet, 0, "sudo -n true", user=name).returncode != 0
        assert ssh(fleet, 0, "sudo -S -p '' true", user=name, input="wrong\n").returncode != 0
    finally:
        fleet.remove_sudo_user(name)
    assert not sudoers.exists()
