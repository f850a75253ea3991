"""Configuration errors are the operator's, not the hosts': found before anything runs.

A missing key or known_hosts file, an unreadable one, an unset password variable or a
transport puppetops does not run would otherwise show up as every target "unreachable"
(after some may already have been changed). Through the real CLI: exit 2, one line on stderr
naming the file or variable and what to do, nothing on stdout, nothing run.
"""
from __future__ import annotations

import os

import pytest
import yaml

from puppetops.errors import ConfigError

from helpers import cli, fleet_run


@pytest.fixture
def fleet(sshd_fleet):
    return sshd_fleet(count=2)


def run_cli(fleet, tmp_path, extra_config=None, *, env=None, targets="fleet", inventory=None):
    """`command` on the fleet that would leave a marker file; returns (process, marker)."""
    inv = inventory or fleet.write_inventory(tmp_path / "inventory.yaml", extra_config=extra_config)
    marker = tmp_path / "ran"
    proc = cli("command", f"touch {marker}", "-t", targets, "-i", str(inv), env=env)
    return proc, marker


def assert_refused(proc, marker, *fragments):
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    assert proc.stdout == "" and not marker.exists()
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


UNSET_VAR = f"POPS_TEST_UNSET_PW_{os.getpid()}"


def _refused(fault: str, detail: str):
    return pytest.mark.reliability(fault=fault, outcome=f"exit 2 before anything runs; one line "
                                                        f"naming {detail}")


@pytest.mark.parametrize("option, content, fragments", [
    pytest.param("private-key", None, ["host1, host2: private key file {path} "
                                       "(config.ssh.private-key) does not exist"],
                 marks=_refused("private-key file missing", "the key file"), id="no-key"),
    pytest.param("private-key", b"-----BEGIN OPENSSH PRIVATE KEY-----\ngarbage\n"
                                b"-----END OPENSSH PRIVATE KEY-----\n",
                 ["private key file {path} ", "is not a private key"],
                 marks=_refused("private-key file that is not a key", "the key file"),
                 id="not-a-key"),
    pytest.param("known-hosts-file", None, ["known_hosts file {path} does not exist", "ssh-keyscan"],
                 marks=_refused("known_hosts file missing", "the file, saying it is missing"),
                 id="no-known-hosts"),
    pytest.param("known-hosts-file", b"\xff\xfe\x00\x81binary\n",
                 ["known_hosts file {path} is not a known_hosts file", "line 3 is not text"],
                 marks=_refused("known_hosts file of binary garbage", "the file and line"),
                 id="binary-known-hosts"),
])
@pytest.mark.slow
def test_an_unusable_key_or_known_hosts_file_is_named_before_anything_runs(
        fleet, tmp_path, option, content, fragments):
    path = tmp_path / option
    if content is not None:  # known_hosts: the fleet's good lines first, then the garbage
        path.write_bytes((fleet.known_hosts_path.read_bytes() if option == "known-hosts-file"
                          else b"") + content)
    proc, marker = run_cli(fleet, tmp_path, {option: str(path)})
    assert_refused(proc, marker, *(fragment.format(path=path) for fragment in fragments))


@pytest.mark.slow
@_refused("sudo-password variable not set", "the variable")
def test_an_unset_sudo_password_variable_is_named(fleet, tmp_path):
    assert UNSET_VAR not in os.environ
    extra = {"run-as": "nobody", "sudo-password": {"_plugin": "env_var", "var": UNSET_VAR}}
    proc, marker = run_cli(fleet, tmp_path, extra)
    assert_refused(proc, marker, f"sudo-password is read from the environment variable "
                   f"{UNSET_VAR}, which is not set; export it")


@pytest.mark.slow
def test_a_known_hosts_file_under_home_is_found(fleet, tmp_path):
    """``known-hosts-file: ~/...`` (as the README shows) means the home directory's file."""
    (tmp_path / "home").mkdir()
    (tmp_path / "home" / "kh").write_bytes(fleet.known_hosts_path.read_bytes())
    proc, marker = run_cli(fleet, tmp_path, {"known-hosts-file": "~/kh"},
                           env={"HOME": str(tmp_path / "home")})
    assert proc.returncode == 0, proc.stderr
    assert marker.exists()


@pytest.mark.reliability(fault="private-key file missing, through the Python API",
                         outcome="ConfigError naming the file before the step runs")
def test_the_python_api_refuses_the_step_with_the_same_message(fleet, tmp_path):
    marker = tmp_path / "ran"
    key = tmp_path / "no_such_key"
    with fleet_run(fleet, extra_config={"private-key": str(key)}) as run:
        with pytest.raises(ConfigError, match=f"host1, host2: private key file {key} "):
            run.command(f"touch {marker}", "fleet")
        assert run.steps == []
    assert not marker.exists()


def bolt_inventory(fleet, tmp_path, **localhost_ssh):
    """The fleet's inventory plus Windows hosts and a localhost, as a Bolt user would have it."""
    data = fleet.inventory_dict()
    data["config"]["transport"] = "ssh"
    data["config"]["winrm"] = {"user": "Administrator", "ssl": False}
    data["groups"] += [{"name": "windows", "config": {"transport": "winrm"},
                        "targets": ["winhost", "winrm://win2.example"]},
                       {"name": "here", "targets": ["localhost"]}]
    path = tmp_path / "bolt-inventory.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


@pytest.mark.slow
@pytest.mark.serial("the local transport's run lock: runs a command on localhost")
@pytest.mark.reliability(fault="run selecting winrm targets of a Bolt inventory",
                         outcome="exit 2 before anything runs, naming the targets and transport")
def test_a_run_that_selects_windows_hosts_is_refused_and_one_that_does_not_runs(fleet, tmp_path):
    inv = bolt_inventory(fleet, tmp_path)
    proc, marker = run_cli(fleet, tmp_path, targets="all", inventory=inv)
    assert_refused(proc, marker, "winhost, winrm://win2.example: transport winrm is not supported "
                   "by puppetops (ssh and local are); remove it from --targets")
    proc, marker = run_cli(fleet, tmp_path, targets="fleet", inventory=inv)
    assert proc.returncode == 0, proc.stderr
    assert marker.exists()


@pytest.mark.slow
@pytest.mark.serial("the local transport's run lock: runs a command on localhost")
def test_inventory_shows_the_transport_each_target_really_uses(fleet, tmp_path):
    inv = bolt_inventory(fleet, tmp_path)
    proc = cli("inventory", "-i", str(inv))
    assert proc.returncode == 0, proc.stderr
    rows = {line.split()[0]: line.split()[1] for line in proc.stdout.splitlines()[2:]}
    assert rows == {"host1": "ssh", "host2": "ssh", "winhost": "winrm",
                    "winrm://win2.example": "winrm", "localhost": "local"}
    assert "a run that selects targets of transport winrm is refused" in proc.stderr
    # and the run uses it: no sshd answers on localhost at the fleet's port, the command runs
    proc = cli("command", "echo local", "-t", "localhost", "-i", str(inv), "--format", "json")
    assert proc.returncode == 0, proc.stderr
    assert '"stdout": "local\\n"' in proc.stdout
