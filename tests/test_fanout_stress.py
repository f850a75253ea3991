"""Repeated 200-host fan-outs on real loopback sshd: a healthy fleet gives nothing but ok.

A race between threads shows up as a rare wrong result, so one run proves little: the test
repeats the whole fan-out (a new Run, 200 new connections) as a benchmark loop would, with
Python switching threads every 0.1 ms instead of every 5 ms so that unlucky interleavings come
often. (Fabric's shared-config race, which reported healthy hosts "unreachable" in 2 of 10 CLI
runs, then showed in every run: 2-19 hosts each.)
"""
from __future__ import annotations

import sys
from collections import Counter

import pytest

from puppetops.result import OK
from puppetops.testing.fixtures import require_sshd
from puppetops.testing.sshd import SshdFleet

from helpers import fleet_run

HOSTS = 200
RUNS = 8  # the unfixed code failed every run (2-19 hosts each)
SWITCH_INTERVAL = 1e-4  # seconds between forced GIL hand-overs (Python's default: 5e-3)
# The point is races, not a slow box: on a 2-core machine shared with other work, 200
# handshakes at once may take longer than the default 10 s (then retried, and reported if
# they run out of attempts), which is a different fault with its own tests.
CONNECT_TIMEOUT = 60


@pytest.fixture(scope="module")
def fleet200(tmp_path_factory):
    require_sshd()
    with SshdFleet(tmp_path_factory.mktemp("sshd-fleet200"), HOSTS, port=None) as fleet:
        yield fleet


@pytest.fixture
def frequent_thread_switches():
    default = sys.getswitchinterval()
    sys.setswitchinterval(SWITCH_INTERVAL)
    yield
    sys.setswitchinterval(default)


@pytest.mark.slow
@pytest.mark.reliability(fault="200 connections opened at once from many threads, 8 runs in a "
                               "row with frequent thread switches",
                         outcome="every healthy host ok in every run; none reported unreachable")
def test_repeated_200_host_fan_outs_report_every_healthy_host_ok(fleet200, frequent_thread_switches):
    wrong: Counter = Counter()
    for _ in range(RUNS):
        with fleet_run(fleet200, extra_config={"connect-timeout": CONNECT_TIMEOUT}) as run:
            rs = run.command("true", "fleet", catch_errors=True)
        assert len(rs) == HOSTS
        wrong.update(f"{r.status}: {r.message}" for r in rs if r.status != OK)
    assert not wrong, wrong.most_common(5)
