"""The infrastructure lock on main, on the lab's bare hosts (no Puppet needed): two controllers
— two processes with their own inventory copies and their own local lock folders, as on two
machines — cannot both run a plan that changes the infrastructure, and a controller killed
with SIGKILL leaves no lock behind on main."""
from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from puppetops.polling import wait_while
from puppetops.remote_lock import REMOTE_LOCK_FILE

from helpers import REPO

pytestmark = pytest.mark.lab

HOLD_PLAN = '''
import sys
from puppetops.plan_registry import plan


@plan(main="main")
def hold_main(run, main: str = "main", wait: bool = False):
    """Changes nothing; holds the infrastructure lock (taken at the first step), with wait=true
    until stdin closes."""
    run.command("true", main)
    print("held", flush=True)
    if wait:
        sys.stdin.readline()
'''


@pytest.fixture
def controllers(lab, tmp_path):
    """(project folder with the hold_main plan, inventory copy of controller A, of B)."""
    project = tmp_path / "project"
    (project / "plans").mkdir(parents=True)
    (project / "plans" / "hold_main.py").write_text(HOLD_PLAN)
    copies = []
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        copies.append(Path(shutil.copy(lab.inventory, tmp_path / name / "inventory.yaml")))
    return project, *copies


def other_controller(project: Path, *args: str) -> subprocess.Popen:
    """puppetops as on another machine: a mount namespace with an empty /run/lock, so it
    shares no local lock with this one (only main can exclude the two)."""
    script = 'mount -t tmpfs puppetops-test-lock /run/lock && exec "$0" -m puppetops "$@"'
    return subprocess.Popen(["unshare", "--mount", "--propagation", "private", "sh", "-c", script,
                             sys.executable, *args], cwd=project, stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def lock_is_free(lab) -> bool:
    probe = subprocess.run(lab.ssh_command("main", f"flock -n {REMOTE_LOCK_FILE} true"),
                           capture_output=True, timeout=60)
    return probe.returncode == 0


@pytest.mark.reliability(fault="two controllers (two machines, two inventory copies) run plans "
                               "that change the same infrastructure at once",
                         outcome="the second exits 75 naming the first's pid, host and plan; it "
                                 "changed nothing; a SIGKILLed first leaves main unlocked")
def test_a_second_controller_is_refused_by_main_until_the_first_dies(lab, controllers, tmp_path):
    project, inventory_a, inventory_b = controllers
    first = other_controller(project, "plan", "hold_main", "wait=true", "-i", str(inventory_a))
    try:
        assert first.stdout.readline() == "held\n", first.stderr.read()
        log = tmp_path / "b.jsonl"
        second = subprocess.run(
            [sys.executable, "-m", "puppetops", "deploy-code", "-i", str(inventory_b),
             "--format", "json", "--log-file", str(log)],
            cwd=REPO, capture_output=True, text=True, timeout=300)
        assert second.returncode == 75, second.stderr
        assert "main.puppetops.test" in second.stderr and f"pid {first.pid}" in second.stderr
        doc = json.loads(second.stdout)
        assert doc["skipped"] == "locked" and doc["ok"] is False and doc["steps"] == []
        assert doc["holder"]["pid"] == first.pid and doc["holder"]["plan"] == "hold_main"
        events = [json.loads(line)["event"] for line in log.read_text().splitlines()]
        # the plan started, and stopped at its first step: the lock is taken before it runs
        assert events == ["plan_start", "run_end"], events
        assert not lock_is_free(lab)
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait()
        first.stdout.close(), first.stderr.close(), first.stdin.close()
    deadline = time.monotonic() + 60  # main's sshd sees the connection close
    while not lock_is_free(lab):
        assert time.monotonic() < deadline, "main still locked after its holder was killed"
        time.sleep(0.5)
    again = subprocess.run([sys.executable, "-m", "puppetops", "plan", "hold_main", "-i",
                            str(inventory_b)], cwd=project, capture_output=True, text=True,
                           timeout=300)
    assert again.returncode == 0, again.stderr


@pytest.mark.reliability(fault="a plan on the same infrastructure from one controller's Python "
                               "API while another controller's plan runs",
                         outcome="LockHeld (exit code 75) before the plan starts")
def test_the_python_api_is_refused_too(lab, controllers):
    from puppetops import Inventory, LockHeld, Run
    from puppetops.plans.configure_lb import configure_lb
    project, inventory_a, inventory_b = controllers
    first = other_controller(project, "plan", "hold_main", "wait=true", "-i", str(inventory_a))
    try:
        assert first.stdout.readline() == "held\n", first.stderr.read()
        with Run(Inventory.load(inventory_b)) as run:
            with pytest.raises(LockHeld) as refused:
                configure_lb(run)
            assert run.steps == [] and refused.value.holder["pid"] == first.pid
    finally:
        first.stdin.close()  # a clean end this time
        assert first.wait(timeout=120) == 0
        first.stdout.close(), first.stderr.close()
    assert lock_is_free(lab)


@pytest.mark.reliability(fault="the SSH connection holding the infrastructure lock on main ends "
                               "mid-run",
                         outcome="the next step takes it again (a warning says so); if another "
                                 "run holds it by then, the run stops before that step, "
                                 "naming the holder")
def test_a_run_whose_lock_connection_ends_takes_it_again_or_stops(lab):
    from puppetops import Inventory, PuppetopsError, Run
    from puppetops.output import Output
    from puppetops.output.base import Outputter
    from puppetops.remote_lock import MainLock
    from puppetops.transport.pool import ConnectionPool

    class Messages(Outputter):
        def __init__(self) -> None:
            self.lines: list[str] = []

        def message(self, text: str) -> None:
            self.lines.append(text)

    inventory = Inventory.load(lab.inventory)
    main = inventory.get("main.puppetops.test")
    output = Messages()
    with Run(inventory, lock=[main], output=Output(output)) as run:
        run.lock_infrastructure("main", "test")
        assert run.command("true", "main").ok and not lock_is_free(lab)
        held = run._main_locks[main.name]
        held._session.chan.close()  # the connection's channel goes, as when sshd drops it
        assert not held.held
        assert run.command("true", "main").ok  # taken again before this step
        assert any("lock on main.puppetops.test was lost" in line and "held again" in line
                   for line in output.lines), output.lines
        assert not lock_is_free(lab)

        run._main_locks[main.name]._session.chan.close()
        intruder = MainLock(ConnectionPool(), main, {"plan": "intruder"})
        wait_while(lambda: not lock_is_free(lab), 60, 0.2)
        intruder.acquire()
        try:
            with pytest.raises(PuppetopsError) as stopped:
                run.command("touch /tmp/puppetops-ran-unlocked", "main")
        finally:
            intruder.release()
    assert "the run stops before its next step (another run holds it now" in str(stopped.value)
    assert "intruder" in str(stopped.value)
    assert subprocess.run(lab.ssh_command("main", "test ! -e /tmp/puppetops-ran-unlocked"),
                          timeout=60).returncode == 0
