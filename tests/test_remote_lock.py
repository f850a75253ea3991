"""The infrastructure lock's command and its kept-open sessions, on both transports, with a
lock file of the test's own (the lab tests, test_main_lock.py, use main's real one)."""
from __future__ import annotations

import pytest

from puppetops import Inventory, LockHeld, PuppetopsError
from puppetops.remote_lock import REFUSED, MainLock, lock_command
from puppetops.target import Target
from puppetops.transport.pool import ConnectionPool


@pytest.fixture(params=["local", "ssh"])
def main(request, sshd_fleet):
    """The "main server": this machine through the local transport, or an sshd host."""
    if request.param == "local":
        return Target("localhost", transport="local")
    fleet = sshd_fleet(count=1)
    return Inventory.from_dict(fleet.inventory_dict()).targets[0]


def test_the_lock_command_holds_until_its_stdin_closes(main, tmp_path):
    path = str(tmp_path / "run.lock")
    pool = ConnectionPool()
    first = pool.dedicated(main).start(lock_command({"pid": 1, "plan": "a"}, path))
    assert first.first_line(30) == "locked"
    second = pool.dedicated(main).start(lock_command({"pid": 2}, path))
    assert second.first_line(30) == '{"pid": 1, "plan": "a"}'
    assert second.end(30).exit_code == REFUSED
    assert first.end(30).exit_code == 0  # stdin closed: the lock is given back
    third = pool.dedicated(main).start(lock_command({"pid": 3}, path))
    assert third.first_line(30) == "locked"
    assert third.end(30).exit_code == 0


@pytest.mark.reliability(fault="a second run asks main for the infrastructure lock it holds",
                         outcome="LockHeld naming main, the holder's pid, plan and run")
def test_a_held_main_lock_refuses_with_the_holder(main, tmp_path):
    path = str(tmp_path / "run.lock")
    held = MainLock(ConnectionPool(), main, {"plan": "deploy_code", "run": "abc"}, path)
    held.acquire()
    try:
        with pytest.raises(LockHeld) as refused:
            MainLock(ConnectionPool(), main, {"plan": "x"}, path).acquire()
        assert refused.value.holder["plan"] == "deploy_code" and refused.value.exit_code == 75
        assert f"main server {main.name} is locked" in str(refused.value)
        assert "plan deploy_code" in str(refused.value) and "run abc" in str(refused.value)
    finally:
        held.release()
    again = MainLock(ConnectionPool(), main, {"plan": "x"}, path)
    again.acquire()
    again.release()


@pytest.mark.reliability(fault="main cannot keep the lock file (its folder cannot be made)",
                         outcome="the run stops before the plan with an error naming main and "
                                 "the file; it never goes on unlocked")
def test_a_lock_that_cannot_be_taken_is_an_error_not_a_pass(main):
    lock = MainLock(ConnectionPool(), main, {"plan": "x"}, "/proc/puppetops-test/run.lock")
    with pytest.raises(PuppetopsError) as failed:
        lock.acquire()
    assert not isinstance(failed.value, LockHeld)
    assert f"{main.name}: cannot take the infrastructure lock (/proc/puppetops-test" \
        in str(failed.value)
