"""The network-namespace lab, for real: hosts, SSH with host key checking, isolation, teardown.

Tests that only read use the session ``lab`` fixture (the default lab). Tests that bring labs up
and down themselves use their own state dir, bridge and subnet, so they never disturb the session
lab or a developer's running one.
"""
from __future__ import annotations

import ipaddress
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import paramiko
import pytest
import yaml
from invoke import Context
from invoke.exceptions import Exit

from puppetops import procs
from puppetops.cli import lab_tasks
from puppetops.lab import (DEFAULT_STATE_DIR, Lab, LabError, LabInfo, default_topology, lab_setup,
                           render_inventory)
from puppetops.lab.fixtures import test_lab
from puppetops.lab import lab as lab_module
from puppetops.lab import net
from puppetops.lab import packages as lab_packages
from puppetops.lab.state import LabRecord
from puppetops.lab.inventory import LAB_VARS

pytestmark = pytest.mark.lab

REPO = Path(__file__).resolve().parents[1]
SESSION, SCRATCH, SPARE = test_lab("session"), test_lab("scratch"), test_lab("spare")
NET = SESSION["subnet"].rsplit(".", 1)[0]  # the session lab's first three octets
DEFAULT_HOSTS = {"main": f"{NET}.11", "compiler1": f"{NET}.12", "compiler2": f"{NET}.13",
                 "lb": f"{NET}.14", "agent1": f"{NET}.21", "agent2": f"{NET}.22"}


def ssh(info: LabInfo, host: str, command: str, *, known_hosts: str | None = None,
        destination: str | None = None, timeout: float = 30) -> subprocess.CompletedProcess:
    """The OpenSSH client, no user config, host key checking on, against ``info``'s known_hosts."""
    address = info.host(host).address
    argv = ["ssh", "-F", "/dev/null", "-i", str(info.private_key), "-o", "BatchMode=yes",
            "-o", "StrictHostKeyChecking=yes", "-o", f"UserKnownHostsFile={known_hosts or info.known_hosts}",
            "-o", "ConnectTimeout=10", "-o", f"HostName={address}", f"root@{destination or address}", command]
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout)


def out(info: LabInfo, host: str, command: str) -> str:
    proc = ssh(info, host, command)
    assert proc.returncode == 0, f"{host}: {command}: rc={proc.returncode} {proc.stderr}"
    return proc.stdout.strip()


def on_all(info: LabInfo, fn):
    with ThreadPoolExecutor(len(info.hosts)) as pool:
        return dict(zip((h.short for h in info.hosts), pool.map(fn, info.hosts)))


def leftovers(state_dir: str, bridge: str, recorded: list[procs.Proc]) -> list[str]:
    """Everything of a lab that is still there, checked on the system (not assumed)."""
    netns = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout.split()
    links = subprocess.run(["ip", "-o", "link", "show"], capture_output=True, text=True).stdout
    found = [f"netns {n}" for n in netns if n.startswith(f"{bridge}-")]
    found += [f"link {line.split(':')[1].strip()}" for line in links.splitlines()
              if line.split(":")[1].strip().split("@")[0].startswith(bridge)]
    found += procs.mounts_matching(lambda mp, src: src.startswith(f"{bridge}-") or state_dir in mp)
    found += [f"process {p.pid}" for p in recorded if p.alive()]
    found += [f"file {p}" for p in Path(state_dir).iterdir()
              if p.name not in ("id_ed25519", "id_ed25519.pub", ".lock")] if Path(state_dir).exists() else []
    return found


def recorded_procs(state_dir: str) -> list[procs.Proc]:
    record = LabRecord.load(Path(state_dir))
    return [p for h in record.hosts for p in (h.launcher, h.sshd) if p] if record else []


@pytest.fixture
def scratch():
    """A Lab object for tests that bring labs up and down; always taken down afterwards."""
    if os.geteuid() != 0:
        pytest.skip("the puppetops lab needs root")
    lab = Lab(**SCRATCH)
    yield lab
    lab.down()


# --- the session lab ------------------------------------------------------------------------------

def test_default_lab_has_six_hosts_with_fixed_addresses(lab):
    assert {h.short: h.address for h in lab.hosts} == DEFAULT_HOSTS
    assert [h.fqdn for h in lab.hosts][:2] == ["main.puppetops.test", "compiler1.puppetops.test"]
    assert lab.controller == f"{NET}.1"
    status = Lab(**SESSION).status()
    assert [s.short for s in status] == list(DEFAULT_HOSTS)
    assert all(s.sshd and s.sshd_pid for s in status), status


def test_every_host_answers_ssh_with_host_key_checking(lab):
    names = on_all(lab, lambda h: out(lab, h.short, "hostname"))
    assert names == {h: h for h in DEFAULT_HOSTS}


def test_known_hosts_entries_work_for_fqdn_and_short_name(lab):
    # connect to the IP (no /etc/hosts needed on the controller) but check the key under the name
    for name in ("compiler2.puppetops.test", "compiler2"):
        proc = ssh(lab, "compiler2", "hostname -f", destination=name)
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout.strip() == "compiler2.puppetops.test"


def test_wrong_host_key_is_refused(lab, tmp_path):
    lines = lab.known_hosts.read_text().splitlines()
    main_names, compiler1_key = lines[0].split()[0], lines[1].split(None, 1)[1]
    wrong = tmp_path / "known_hosts"
    wrong.write_text(f"{main_names} {compiler1_key}\n")  # main's names with compiler1's key
    proc = ssh(lab, "main", "hostname", known_hosts=str(wrong))
    assert proc.returncode == 255
    assert "Host key verification failed" in proc.stderr
    unknown = tmp_path / "empty"
    unknown.write_text("")
    assert ssh(lab, "main", "hostname", known_hosts=str(unknown)).returncode == 255


def test_paramiko_accepts_the_known_hosts_file(lab):
    """The project's SSH transport is paramiko: it must parse our multi-name known_hosts lines."""
    client = paramiko.SSHClient()
    client.load_host_keys(str(lab.known_hosts))
    client.set_missing_host_key_policy(paramiko.RejectPolicy())
    client.connect(DEFAULT_HOSTS["agent1"], username="root", key_filename=str(lab.private_key),
                   look_for_keys=False, allow_agent=False, timeout=10)
    try:
        _, stdout, _ = client.exec_command("hostname -f")
        assert stdout.read().decode().strip() == "agent1.puppetops.test"
    finally:
        client.close()


def test_hostname_and_fqdn_per_host(lab):
    result = on_all(lab, lambda h: out(lab, h.short, "hostname; hostname -f").split())
    assert result == {h: [h, f"{h}.puppetops.test"] for h in DEFAULT_HOSTS}


def test_hosts_resolve_each_other_from_etc_hosts_fast(lab):
    start = time.monotonic()
    text = out(lab, "main", "getent hosts compiler1.puppetops.test lb control; ip route")
    assert f"{NET}.12".ljust(16) + "compiler1.puppetops.test compiler1" in text
    assert f"{NET}.14".ljust(16) + "lb.puppetops.test lb" in text
    assert f"{NET}.1".ljust(16) + "control.puppetops.test control" in text
    assert "default" not in text  # lab traffic stays on the bridge
    assert time.monotonic() - start < 5  # P2: a DNS fallback stalls 10-20 s


def test_host_to_host_ssh_checks_host_keys(lab):
    # no client key on main, so auth fails, but only after the host key was verified
    proc = ssh(lab, "main", "ssh -o BatchMode=yes -o StrictHostKeyChecking=yes root@compiler1 true")
    assert "Permission denied (publickey)" in proc.stderr, proc.stderr


def test_each_host_has_its_own_pid_namespace(lab):
    text = out(lab, "lb", "cat /proc/1/cmdline | tr '\\0' ' '; echo; ps -e -o pid= | wc -l")
    init, count = text.splitlines()
    assert init.startswith("sshd:")
    assert int(count) < 10  # only this host's processes, not the machine's


def test_filesystem_isolation(lab):
    path, token = f"/etc/puppetops-isolation-{uuid.uuid4().hex[:8]}", uuid.uuid4().hex
    out(lab, "compiler1", f"echo {token} > {path}")
    try:
        seen = on_all(lab, lambda h: out(lab, h.short, f"cat {path} 2>/dev/null || echo absent"))
        assert seen == {h: (token if h == "compiler1" else "absent") for h in DEFAULT_HOSTS}
        assert not Path(path).exists()  # not on the real machine
        assert (lab.state_dir / "compiler1" / "upper" / path.lstrip("/")).read_text().strip() == token
    finally:
        out(lab, "compiler1", f"rm -f {path}")


def test_root_ssh_dir_of_the_real_machine_is_hidden(lab):
    assert out(lab, "agent2", "ls -A /root/.ssh") == "authorized_keys"
    assert out(lab, "agent2", "ls /etc/ssh/ssh_host_*") == \
        "/etc/ssh/ssh_host_ed25519_key\n/etc/ssh/ssh_host_ed25519_key.pub"


def test_setsid_daemon_survives_the_ssh_session(lab):
    out(lab, "agent1", "setsid sleep 1000 >/dev/null 2>&1 </dev/null & echo $! > /run/x.pid")
    try:
        text = out(lab, "agent1", "pid=$(cat /run/x.pid); kill -0 $pid && grep PPid /proc/$pid/status")
        assert text.split() == ["PPid:", "1"]  # adopted by the host's PID 1 (sshd), which reaps it
        host = next(s for s in Lab(**SESSION).status() if s.short == "agent1")
        assert any(procs.cmdline(p)[:2] == ["sleep", "1000"] for p in host.pids)
    finally:
        out(lab, "agent1", "kill $(cat /run/x.pid); rm -f /run/x.pid")


def test_ssh_sessions_skip_roots_bashrc(lab):
    """SetEnv SHLVL=1 in sshd_config: bash does not source ~/.bashrc (pyenv init, ~190 ms)."""
    assert out(lab, "main", "echo ${PYENV_SHELL:-none}") == "none"
    if "pyenv init" in Path("/root/.bashrc").read_text(errors="replace"):
        # control: the same command at SHLVL 0 does source it, so the check above means something
        assert out(lab, "main", "env SHLVL=0 bash -c 'echo ${PYENV_SHELL:-none}'") == "bash"


def test_status_finds_puppet_services_without_ssh(scratch):
    # a lab of its own: the session lab may run the stood-up infrastructure's real services
    info = scratch.up(compilers=1, agents=1)
    lb, compiler = info.host("lb").address, info.host("compiler1").address
    cfg = ("global\\n daemon\\n pidfile /run/haproxy.pid\\ndefaults\\n mode tcp\\n timeout connect 1s\\n"
           " timeout client 1s\\n timeout server 1s\\nfrontend fe\\n bind " + lb + ":8140\\n"
           " default_backend be\\nbackend be\\n server c1 " + compiler + ":8140\\n")
    out(info, "lb", f"printf '{cfg}' > /tmp/t.cfg && haproxy -q -f /tmp/t.cfg")
    out(info, "agent1", "setsid bash -c 'exec -a \"puppet agent: applying configuration\" sleep 1000' "
                        ">/dev/null 2>&1 </dev/null & echo $! > /run/fake-agent.pid")
    services = {s.short: s.services for s in scratch.status()}
    assert services["lb"] == ("haproxy",)
    assert services["agent1"] == ("puppet agent",)
    assert services["main"] == services["compiler1"] == ()


def test_up_is_a_no_op_while_healthy(lab):
    before = [s.sshd_pid for s in Lab(**SESSION).status()]
    start = time.monotonic()
    assert Lab(**SESSION).up().hosts == lab.hosts
    assert time.monotonic() - start < 5
    assert [s.sshd_pid for s in Lab(**SESSION).status()] == before


def test_inventory_files(lab):
    data = yaml.safe_load(lab.inventory.read_text())
    assert data["config"]["ssh"] == {"user": "root", "private-key": f"{lab.state_dir}/id_ed25519",
                                     "known-hosts-file": f"{lab.state_dir}/known_hosts",
                                     "host-key-check": True, "connect-timeout": 10}
    assert data["vars"] == {"lb_name": "lb.puppetops.test", "domain": "puppetops.test",
                            **LAB_VARS}
    groups = {g["name"]: g for g in data["groups"]}
    assert list(groups) == ["main", "compilers", "loadbalancers", "agents"]
    assert groups["main"]["targets"] == [{"name": "main.puppetops.test", "uri": DEFAULT_HOSTS["main"]}]
    assert groups["compilers"]["targets"][1] == {"name": "compiler2.puppetops.test", "alias": "compiler2",
                                                 "uri": DEFAULT_HOSTS["compiler2"]}
    assert groups["loadbalancers"]["vars"] == {"lb_backend": "haproxy"}
    # the committed inventory is the default lab's
    assert (REPO / "inventory.yaml").read_text() == render_inventory(default_topology(), DEFAULT_STATE_DIR)
    from puppetops.inventory import Inventory
    inv = Inventory.load(str(lab.inventory), strict=True)
    assert [(t.name, t.host) for t in inv.select("compilers")] == [
        ("compiler1.puppetops.test", DEFAULT_HOSTS["compiler1"]),
        ("compiler2.puppetops.test", DEFAULT_HOSTS["compiler2"])]


def test_cli_status_table(lab, capsys):
    lab_tasks.lab_status(Context(), state_dir=str(lab.state_dir))
    text = capsys.readouterr().out
    assert "main.puppetops.test" in text and DEFAULT_HOSTS["agent2"] in text and text.count("up (pid") == 6


# --- labs brought up and down by the tests ------------------------------------------------------

def test_down_leaves_nothing_behind(scratch):
    info = scratch.up(compilers=1, agents=1)
    assert len(info.hosts) == 4 and info.host("agent1").address == SCRATCH["subnet"].replace(".0/24", ".21")
    recorded = recorded_procs(SCRATCH["state_dir"])
    assert len(recorded) == 8 and all(p.alive() for p in recorded)
    start = time.monotonic()
    scratch.down()
    assert time.monotonic() - start < 10
    assert leftovers(SCRATCH["state_dir"], SCRATCH["bridge"], recorded) == []
    assert scratch.status() == []
    scratch.down()  # idempotent


def test_up_recovers_after_a_crash(scratch):
    info = scratch.up()
    record = LabRecord.load(info.state_dir)
    killed = next(h for h in record.hosts if h.short == "compiler1").sshd
    os.kill(killed.pid, signal.SIGKILL)  # a crashed host: its whole PID namespace dies with it
    deadline = time.monotonic() + 5
    while killed.alive() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not scratch.is_up()
    info = scratch.up()
    assert ssh(info, "compiler1", "hostname").stdout.strip() == "compiler1"

    # a deleted namespace: its sshd still runs, unreachable; up() must stop it by recorded PID
    orphan = next(h for h in LabRecord.load(info.state_dir).hosts if h.short == "agent1").sshd
    subprocess.run(["ip", "netns", "delete", f"{SCRATCH['bridge']}-agent1"], check=True)
    assert not scratch.is_up()
    info = scratch.up()
    assert not orphan.alive()
    assert on_all(info, lambda h: out(info, h.short, "hostname")) == {h: h for h in DEFAULT_HOSTS}


CRASH = """
import os, sys
from puppetops.lab import Lab
from puppetops.lab.lab import Lab as L
setattr(L, sys.argv[1], lambda *args: os._exit(3))  # die on entering that step, no cleanup
Lab(state_dir=sys.argv[2], subnet=sys.argv[3], bridge=sys.argv[4]).up()
"""


@pytest.mark.parametrize("crash_in", ["_launch", "_wait_for_sshd"])
def test_down_after_a_half_failed_up(scratch, crash_in):
    """The process running up() dies mid-way (before/after starting the hosts); down() cleans up."""
    argv = [sys.executable, "-c", CRASH, crash_in, SCRATCH["state_dir"], SCRATCH["subnet"], SCRATCH["bridge"]]
    proc = subprocess.run(argv, cwd=REPO, capture_output=True, text=True)
    assert proc.returncode == 3, proc.stderr
    assert LabRecord.load(Path(SCRATCH["state_dir"])).phase == "building"
    recorded = recorded_procs(SCRATCH["state_dir"])
    assert len(recorded) == (6 if crash_in == "_wait_for_sshd" else 0)
    scratch.down()
    assert leftovers(SCRATCH["state_dir"], SCRATCH["bridge"], recorded) == []


def test_different_topology_while_up_is_refused(scratch):
    scratch.up(compilers=1, agents=0)
    with pytest.raises(LabError, match="take it down first"):
        scratch.up(compilers=2, agents=0)


def test_objects_the_lab_does_not_own_are_refused_and_left_alone(scratch):
    subprocess.run(["ip", "netns", "add", f"{SCRATCH['bridge']}-main"], check=True)  # not in any lab record
    try:
        with pytest.raises(LabError, match=f"netns {SCRATCH['bridge']}-main already exist"):
            scratch.up()
        assert os.path.exists(f"/run/netns/{SCRATCH['bridge']}-main")
        assert not os.path.exists(f"/sys/class/net/{SCRATCH['bridge']}")
    finally:
        subprocess.run(["ip", "netns", "delete", f"{SCRATCH['bridge']}-main"], check=True)


def test_subnet_in_use_is_refused():
    if os.geteuid() != 0:
        pytest.skip("the puppetops lab needs root")
    state_dir, subnet = SPARE["state_dir"], ipaddress.IPv4Network(SPARE["subnet"])
    squatter = "plsquat" + SPARE["bridge"][-1]  # another bridge already on the lab's subnet
    squat_address = str(subnet.network_address + 5)
    if net.subnet_users(subnet):
        pytest.skip(f"{subnet} is in use here already; the test would disturb its user")
    # the interface stays down: the kernel adds no route for the subnet, so nothing is disturbed
    subprocess.run(["ip", "link", "add", squatter, "type", "bridge"], check=True)
    try:
        subprocess.run(["ip", "addr", "add", f"{squat_address}/24", "dev", squatter], check=True)
        with pytest.raises(LabError, match=rf"subnet {subnet} is already in use .*{squatter} {squat_address}/24"):
            Lab(state_dir, str(subnet), SPARE["bridge"]).up()
        assert leftovers(state_dir, SPARE["bridge"], []) == []
    finally:
        subprocess.run(["ip", "link", "delete", squatter], check=True)
        shutil.rmtree(state_dir, ignore_errors=True)


# --- pure functions and small pieces --------------------------------------------------------------

def test_topology_addresses():
    big = default_topology(compilers=10, agents=188)
    assert len(big.hosts) == 200 and len({h.address for h in big.hosts}) == 200
    assert big.host("compiler10").address == "10.77.0.21" and big.host("lb").address == "10.77.0.22"
    assert big.host("agent1").address == "10.77.0.31" and big.host("agent188").address == "10.77.0.218"
    assert default_topology(2, 196).hosts[-1].address == "10.77.0.216"
    with pytest.raises(LabError, match="at most 200"):
        default_topology(2, 197)
    with pytest.raises(LabError, match="too small"):
        default_topology(2, 2, subnet="10.77.0.0/28")
    with pytest.raises(LabError, match="invalid lab subnet"):
        default_topology(subnet="10.77.0.1/24")
    with pytest.raises(LabError, match="invalid bridge name"):
        Lab(bridge="pl-br")


def test_inventory_uses_one_line_per_target_for_big_groups():
    text = render_inventory(default_topology(2, 6), "/srv/lab dir")
    data = yaml.safe_load(text)
    assert data["config"]["ssh"]["private-key"] == "/srv/lab dir/id_ed25519"
    assert len(data["groups"][3]["targets"]) == 6
    assert "      - {name: agent6.puppetops.test, alias: agent6, uri: 10.77.0.26}" in text


def test_service_detection():
    assert lab_module.service_of(["/usr/bin/java", "-Xms512m", "-jar", "/usr/share/puppetserver/puppetserver.jar",
                             "--config", "/etc/puppet/puppetserver/conf.d"]) == "puppetserver"
    assert lab_module.service_of(["java", "-jar", "/usr/share/puppetdb/puppetdb.jar"]) == "puppetdb"
    assert lab_module.service_of(["/usr/bin/ruby", "/usr/bin/puppet", "agent", "--no-daemonize"]) == "puppet agent"
    assert lab_module.service_of(["nginx: master process /usr/sbin/nginx"]) == "nginx"
    assert lab_module.service_of(["/usr/sbin/haproxy", "-f", "/etc/haproxy/haproxy.cfg"]) == "haproxy"
    assert lab_module.service_of(["bash", "-c", "puppet agent -t"]) is None
    assert lab_module.service_of(["/bin/bash", "/usr/share/puppetserver/cli/apps/foreground"]) is None


def test_lab_setup_is_a_no_op_when_everything_is_installed(monkeypatch):
    if lab_packages.missing_packages():
        pytest.skip("some lab packages are missing here; lab_setup would install them")
    real_run = subprocess.run

    def no_apt(argv, *args, **kwargs):
        assert argv[0] != "apt-get", argv
        return real_run(argv, *args, **kwargs)
    monkeypatch.setattr(lab_packages.subprocess, "run", no_apt)
    assert lab_setup() == []


def test_not_root_is_a_clear_error(monkeypatch):
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    for action in (Lab(**SCRATCH).up, Lab(**SCRATCH).down):
        with pytest.raises(LabError, match="the lab needs root"):
            action()


def test_missing_kernel_features_are_clear_errors(monkeypatch):
    if os.geteuid() != 0:
        pytest.skip("the preflight checks after the root check")
    real_which, real_run = shutil.which, subprocess.run
    monkeypatch.setattr(lab_module.shutil, "which", lambda n: None if n == "unshare" else real_which(n))
    with pytest.raises(LabError, match="missing commands: unshare"):
        Lab(**SCRATCH).up()
    monkeypatch.setattr(lab_module.shutil, "which", real_which)

    monkeypatch.setattr(lab_module, "_kernel_filesystems", lambda: ["ext4", "proc"])
    with pytest.raises(LabError, match="overlayfs is not available"):
        Lab(**SCRATCH).up()
    monkeypatch.undo()

    def no_namespaces(argv, *args, **kwargs):
        if argv[0] == "unshare":
            return subprocess.CompletedProcess(argv, 1, "", "unshare: unshare failed: Operation not permitted")
        return real_run(argv, *args, **kwargs)
    monkeypatch.setattr(lab_module.subprocess, "run", no_namespaces)
    with pytest.raises(LabError, match="cannot create namespaces here .*Operation not permitted"):
        Lab(**SCRATCH).up()


def test_cli_maps_lab_errors_to_exit_code_2():
    with pytest.raises(Exit) as exc:
        lab_tasks.lab_up(Context(), bridge="1-bad-bridge")
    assert exc.value.code == 2 and "invalid bridge name" in str(exc.value.message)
    with pytest.raises(Exit) as exc:  # a number the option's type refuses: before any lab work
        lab_tasks.lab_up(Context(), compilers=0)
    assert exc.value.code == 2 and "--compilers: expected an integer of at least 1" in \
        str(exc.value.message)
