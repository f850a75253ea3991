"""A supervised daemon's start and stop scripts, run by a real shell on this machine.

The case that matters: a controller dies while its stop is waiting for the process to end
(its SSH session is gone, the remote shell carries on) and the next controller starts the
daemon at once. The stop must finish first and must not remove its successor's pid file —
that once left a second Puppet Server JVM untracked, holding port 8140, so every later
start "exited".
"""
from __future__ import annotations

import os
import subprocess
import time

import pytest

from puppetops.steps.services import Daemon

SLOW_TO_STOP = "sh -c 'trap \"sleep 1; exit 0\" TERM; while :; do sleep 0.1; done'"


def sh(script: str) -> subprocess.CompletedProcess:
    return subprocess.run(["sh", "-c", script], capture_output=True, text=True, timeout=60)


def pid_in(pidfile) -> int:
    return int(pidfile.read_text())


def alive(pid: int) -> bool:
    """Exited counts as dead even before it is reaped (a zombie holds no port)."""
    try:
        stat = open(f"/proc/{pid}/stat").read()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


@pytest.fixture
def daemon(tmp_path):
    d = Daemon(command=SLOW_TO_STOP, pidfile=str(tmp_path / "slow.pid"), log="/dev/null")
    yield d
    sh(d.stop_script(grace=3))


@pytest.mark.slow
def test_start_is_idempotent_and_stop_waits_for_the_process(daemon, tmp_path):
    assert sh(daemon.start_script()).returncode == 0
    first = pid_in(tmp_path / "slow.pid")
    assert sh(daemon.start_script()).returncode == 0  # already running: no second process
    assert pid_in(tmp_path / "slow.pid") == first
    assert sh(daemon.stop_script(grace=5)).returncode == 0
    assert not alive(first) and not (tmp_path / "slow.pid").exists()
    assert sh(daemon.running_test()).returncode != 0


@pytest.mark.slow
def test_a_start_during_an_orphaned_stop_waits_and_keeps_its_pid_file(daemon, tmp_path):
    pidfile = tmp_path / "slow.pid"
    assert sh(daemon.start_script()).returncode == 0
    old = pid_in(pidfile)
    orphan = subprocess.Popen(["sh", "-c", daemon.stop_script(grace=5)])  # its controller died
    time.sleep(0.5)  # the orphan holds the lock, waiting for the old process to end
    assert sh(daemon.start_script()).returncode == 0
    assert orphan.wait(timeout=30) == 0
    new = pid_in(pidfile)  # the orphan's stop finished without removing it
    assert new != old and alive(new) and not alive(old)
    assert sh(daemon.running_test()).returncode == 0


@pytest.mark.slow
def test_a_process_that_ignores_term_is_killed_and_gone_when_stop_returns(tmp_path):
    d = Daemon(command="sh -c 'trap \"\" TERM; while :; do sleep 0.1; done'",
               pidfile=str(tmp_path / "stubborn.pid"), log="/dev/null")
    assert sh(d.start_script()).returncode == 0
    pid = pid_in(tmp_path / "stubborn.pid")
    assert sh(d.stop_script(grace=1)).returncode == 0
    assert not alive(pid)


@pytest.mark.slow
def test_a_daemon_with_a_user_runs_as_that_user_and_its_pid_file_names_it(tmp_path):
    """The pid file names the process itself, running as the user with that user's
    environment: what is signalled on stop is the service, not a root parent."""
    pidfile = tmp_path / "as-user.pid"
    d = Daemon(command="sh -c 'echo \"$HOME\" > /dev/null; exec sleep 600'", pidfile=str(pidfile),
               log="/dev/null", user="nobody")
    try:
        assert sh(d.start_script()).returncode == 0
        pid = pid_in(pidfile)
        for _ in range(100):  # the pid file is written just before the exec
            if open(f"/proc/{pid}/cmdline").read().startswith("sleep"):
                break
            time.sleep(0.05)
        status = open(f"/proc/{pid}/status").read()
        uid = next(line.split()[1] for line in status.splitlines() if line.startswith("Uid:"))
        assert uid == "65534"  # nobody
        assert open(f"/proc/{pid}/cmdline").read().split("\0")[0] == "sleep"
        environ = dict(item.split("=", 1) for item in
                       open(f"/proc/{pid}/environ").read().split("\0") if "=" in item)
        assert environ.get("USER") == "nobody" and environ.get("HOME") != "/root"
        assert os.readlink(f"/proc/{pid}/cwd") == "/"  # not a folder the user may not read
    finally:
        assert sh(d.stop_script(grace=3)).returncode == 0
    assert not pidfile.exists()
