"""puppetops.procs: the reads of other processes' state the lab and the sshd fleet make, on
real processes (this test's own, a child it starts, a socket it opens)."""
from __future__ import annotations

import os
import socket
import subprocess
import sys

from puppetops import procs


def test_a_processes_network_namespace_and_who_is_in_it():
    ours = procs.netns_of(os.getpid())
    assert ours == os.stat("/proc/self/ns/net").st_ino
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        assert procs.netns_of(child.pid) == ours
        assert {os.getpid(), child.pid} <= set(procs.pids_in_netns([ours])[ours])
    finally:
        child.kill()
        child.wait()
    assert procs.netns_of(child.pid) is None  # gone (reaped)


def test_a_listener_is_seen_in_the_processes_namespace_until_it_closes():
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        port = server.getsockname()[1]
        assert not procs.listening_in_netns_of(os.getpid(), port)  # bound, not listening
        server.listen()
        assert procs.listening_in_netns_of(os.getpid(), port)
    assert not procs.listening_in_netns_of(os.getpid(), port)


def test_the_user_a_process_runs_as():
    assert procs.owner_uid(os.getpid()) == os.geteuid()
    child = subprocess.Popen(["true"])
    child.wait()
    assert procs.owner_uid(child.pid) is None
