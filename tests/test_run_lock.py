"""The run lock, on real sshd hosts: one run per host whichever path leads there (a copy or a
symlink of the inventory, cron's environment or a login shell's, the CLI or the Python API),
none between runs on different hosts, and a refused run that still reports."""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from puppetops import Inventory, LockHeld, Run
from puppetops.lock import RunLock, host_key, usable_lock_dir
from puppetops.target import Target
from puppetops.testing.fixtures import require_root

from helpers import REPO, cli

WRONG_PATHS = "two runs through different paths to the same hosts"

# A Python program that holds a Run (the API's default: locked) until its stdin closes.
HOLD = """
import sys
from puppetops import Inventory, Run
with Run(Inventory.load(sys.argv[1])):
    print("held", flush=True)
    sys.stdin.read()
"""


class Holder:
    """Another process holding a run on ``inventory`` through the Python API, from a login
    session (XDG_RUNTIME_DIR set, as pam_systemd does)."""

    def __init__(self, inventory: Path):
        session = Path(inventory).parent / "xdg-runtime"
        session.mkdir(exist_ok=True)
        self.proc = subprocess.Popen([sys.executable, "-c", HOLD, str(inventory)], cwd=REPO,
                                     env=dict(os.environ, XDG_RUNTIME_DIR=str(session)),
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout.readline() == "held\n"

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.stdin.close()
            self.proc.wait(timeout=30)


@pytest.fixture
def fleet_inventory(sshd_fleet, tmp_path):
    fleet = sshd_fleet(count=2)
    return fleet, fleet.write_inventory(tmp_path / "inventory.yaml")


@pytest.fixture
def holder(fleet_inventory):
    held = Holder(fleet_inventory[1])
    yield held
    held.stop()


def inventory_copy(original: Path, folder: Path) -> Path:
    folder.mkdir()
    return Path(shutil.copy(original, folder / "inventory.yaml"))


def without_xdg() -> dict[str, str]:
    """cron's environment: no XDG_RUNTIME_DIR, a bare PATH, another TMPDIR."""
    env = {k: v for k, v in os.environ.items() if k != "XDG_RUNTIME_DIR"}
    return dict(env, PATH="/usr/bin:/bin", TMPDIR="/var/tmp")


def cli_env(env: dict[str, str] | None, *args: str) -> subprocess.CompletedProcess:
    if env is None:
        return cli(*args)
    return subprocess.run([sys.executable, "-m", "puppetops", *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=120)


@pytest.mark.slow
@pytest.mark.reliability(fault=WRONG_PATHS + " (inventory copy, symlink, cron env vs login "
                               "env, Python API holding while the CLI runs)",
                         outcome="the second run exits 75 naming the host and the holder's pid; "
                                 "nothing runs, its JSON document and log line say skipped")
@pytest.mark.parametrize("path", ["copy", "symlink", "cron env", "login env"])
def test_a_python_api_run_excludes_the_cli_by_any_path(fleet_inventory, holder, tmp_path, path):
    fleet, original = fleet_inventory
    env = None
    if path == "copy":
        inventory = inventory_copy(original, tmp_path / "elsewhere")
    elif path == "symlink":
        inventory = tmp_path / "link.yaml"
        inventory.symlink_to(original)
    else:
        inventory = original
        other_session = dict(os.environ, XDG_RUNTIME_DIR=str(tmp_path))
        env = without_xdg() if path == "cron env" else other_session
    marker = tmp_path / "ran"
    log = tmp_path / "run.jsonl"
    proc = cli_env(env, "command", f"touch {marker}", "-t", "host2", "-i", str(inventory),
                   "--format", "json", "--log-file", str(log))
    assert proc.returncode == 75, proc.stderr
    assert not marker.exists()
    assert "host2" in proc.stderr and f"pid {holder.proc.pid}" in proc.stderr
    assert "Traceback" not in proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["ok"] is False and doc["skipped"] == "locked" and doc["steps"] == []
    assert doc["holder"]["pid"] == holder.proc.pid and "host2" in doc["error"]
    assert len(doc["holder"]["run"]) == 12 and f"run {doc['holder']['run']}" in doc["error"]
    end = [json.loads(line) for line in log.read_text().splitlines()][-1]
    assert end["event"] == "run_end" and end["skipped"] == "locked"
    assert end["holder"]["pid"] == holder.proc.pid


@pytest.mark.slow
@pytest.mark.reliability(fault=WRONG_PATHS + " (a plan from cron, human output redirected)",
                         outcome="exit 75; the redirected stdout says the run was skipped and why")
def test_a_refused_human_run_says_so_on_stdout(fleet_inventory, holder):
    _, inventory = fleet_inventory
    proc = cli_env(without_xdg(), "plan", "facts", "-i", str(inventory))
    assert proc.returncode == 75
    assert proc.stdout.startswith("skipped (locked): host ") and "is locked" in proc.stdout
    assert f"pid {holder.proc.pid}" in proc.stdout and "error: host " in proc.stderr


@pytest.mark.slow
@pytest.mark.reliability(fault="a run that must wait for another's lock (--wait-lock)",
                         outcome="it says whose lock it waits for and runs once it is free; "
                                 "still held after the wait: exit 75 saying how long it waited")
def test_wait_lock_waits_for_the_holder_then_runs_or_gives_up(fleet_inventory, holder, tmp_path):
    _, inventory = fleet_inventory
    gave_up = cli("command", "true", "-t", "host2", "-i", str(inventory), "--wait-lock", "1")
    assert gave_up.returncode == 75, gave_up.stderr
    assert "(waited 1 s)" in gave_up.stderr and f"pid {holder.proc.pid}" in gave_up.stderr
    marker = tmp_path / "ran"
    waiting = subprocess.Popen([sys.executable, "-m", "puppetops", "command", f"touch {marker}",
                                "-t", "host2", "-i", str(inventory), "--wait-lock", "120"],
                               cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True)
    first = waiting.stderr.readline()
    assert first.startswith("waiting up to 120 s for the lock on ") and \
        f"pid {holder.proc.pid}" in first, first
    assert not marker.exists()
    holder.stop()
    out, err = waiting.communicate(timeout=60)
    assert waiting.returncode == 0, first + err
    assert marker.exists()


@pytest.mark.slow
@pytest.mark.reliability(fault="Ctrl-C while waiting for another run's lock (--wait-lock)",
                         outcome="the wait ends at once, exit 130, nothing run")
def test_an_interrupt_ends_the_wait_for_a_lock(fleet_inventory, holder, tmp_path):
    _, inventory = fleet_inventory
    marker = tmp_path / "ran"
    waiting = subprocess.Popen([sys.executable, "-m", "puppetops", "command", f"touch {marker}",
                                "-t", "host2", "-i", str(inventory), "--wait-lock", "600"],
                               cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True)
    assert waiting.stderr.readline().startswith("waiting up to 600 s for the lock on ")
    waiting.send_signal(signal.SIGINT)
    out, err = waiting.communicate(timeout=30)
    assert waiting.returncode == 130 and "Traceback" not in err, err
    assert not marker.exists()


@pytest.mark.reliability(fault=WRONG_PATHS + " (the CLI holding, the Python API second; "
                               "then the CLI killed with SIGKILL)",
                         outcome="the Python run raises LockHeld; once the holder is killed the "
                                 "lock is free at once")
def test_the_cli_excludes_the_python_api_and_sigkill_frees_it(fleet_inventory, tmp_path):
    _, original = fleet_inventory
    started = tmp_path / "started"
    running = subprocess.Popen(
        [sys.executable, "-m", "puppetops", "command", f"touch {started}; sleep 60",
         "-t", "all", "-i", str(original)], cwd=REPO, stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while not started.exists():
            assert running.poll() is None and time.monotonic() < deadline
            time.sleep(0.05)
        copy = Inventory.load(inventory_copy(original, tmp_path / "copy"))
        with pytest.raises(LockHeld) as refused:
            Run(copy)
        assert refused.value.holder["pid"] == running.pid
        assert refused.value.exit_code == 75
    finally:
        running.send_signal(signal.SIGKILL)
        running.wait()
    with Run(copy) as run:  # the kernel released the killed run's lock
        assert run.command("true", "all").ok


@pytest.mark.slow
@pytest.mark.reliability(fault="two runs on different hosts at the same time",
                         outcome="both run: the lock is per host, not per inventory or user")
def test_runs_on_different_hosts_do_not_exclude_each_other(fleet_inventory, tmp_path):
    fleet, original = fleet_inventory
    data = yaml.safe_load(original.read_text())
    first, second = data["groups"][0]["targets"]
    only_host1 = tmp_path / "host1.yaml"
    only_host1.write_text(yaml.safe_dump(dict(data, groups=[{"name": "one", "targets": [first]}])))
    held = Holder(only_host1)
    try:
        alone = tmp_path / "host2.yaml"
        alone.write_text(yaml.safe_dump(dict(data, groups=[{"name": "two", "targets": [second]}])))
        assert cli("plan", "facts", "-i", str(alone)).returncode == 0
        # a command on chosen targets locks only theirs, even from the whole inventory
        proc = cli("command", "true", "-t", "host2", "-i", str(original))
        assert proc.returncode == 0, proc.stderr
        assert cli("command", "true", "-t", "all", "-i", str(original)).returncode == 75
    finally:
        held.stop()


def test_a_host_is_one_lock_whatever_its_name():
    by_name = Target("a", host="localhost", port=2222)
    by_address = Target("b", host="127.0.0.1", port=2222)
    assert host_key(by_name) == host_key(by_address) == "ssh:127.0.0.1:2222"
    assert host_key(Target("c", host="127.0.0.1")) == "ssh:127.0.0.1:22"
    assert host_key(Target("d", host="127.0.0.1", port=2223)) != host_key(by_address)
    assert host_key(Target("localhost", transport="local")) == "local"


def test_locks_are_taken_all_or_none(fleet_inventory, tmp_path):
    """A run refused on its second host gives its first one back at once."""
    _, original = fleet_inventory
    hosts = Inventory.load(original).targets
    with RunLock(hosts[1:]):
        with pytest.raises(LockHeld):
            RunLock(hosts).acquire()
        with RunLock(hosts[:1]):  # host1 was released by the refused attempt
            pass


def test_run_lock_false_takes_no_lock(fleet_inventory, holder):
    _, original = fleet_inventory
    with Run(Inventory.load(original), lock=False) as run:
        assert run.command("true", "all").ok


@pytest.mark.reliability(fault="a lock folder made by another user, that user able to delete "
                               "our lock files",
                         outcome="not used: only a folder of ours, or a sticky shared one")
def test_a_lock_folder_others_could_empty_is_not_used(tmp_path):
    require_root("gives the folder to another user")
    folder = tmp_path / "locks"
    folder.mkdir()
    os.chown(folder, 65534, 65534)
    os.chmod(folder, 0o777)
    assert not usable_lock_dir(str(folder), mode=0o1777)
    os.chmod(folder, 0o1777)
    assert usable_lock_dir(str(folder), mode=0o1777)
    assert not usable_lock_dir(str(folder), mode=0o700)  # a private folder must be ours
