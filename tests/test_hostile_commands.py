"""Hostile arguments quoted into remote commands, run for real on loopback sshd daemons
(property-based): file paths and contents, lines, run-as users and target names made of shell
metacharacters, quotes, newlines, unicode and 10,000-character strings, each carrying a
payload that would create a canary file. Each one is written or refused as one word; the
canary never appears (the fleet's hosts share the controller's /tmp)."""
from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import assume, given

from puppetops import Inventory, Run
from puppetops.errors import InventoryError
from puppetops.steps import RunCommand
from puppetops.testing.fixtures import require_sshd
from puppetops.testing.sshd import SshdFleet

from hostile import (Canary, assert_refused_everywhere, examples, file_name, fits, hostile,
                     run_file_steps)

CANARY = Canary()
FLEET = examples(15)


@pytest.fixture(scope="module")
def fleet_run(tmp_path_factory):
    """Two loopback sshd hosts and one Run on them for the whole module (a connection per host
    reused by every example, as in a real run)."""
    require_sshd()
    fleet = SshdFleet(tmp_path_factory.mktemp("hostile-fleet"), count=2, port=None).start()
    try:
        with Run(Inventory.from_dict(fleet.inventory_dict()), backoff=0.2) as run:
            yield fleet, run
    finally:
        fleet.stop()
        CANARY.assert_absent()


@pytest.mark.slow
@pytest.mark.reliability(fault="hostile file paths, contents and lines in file steps "
                               "(real sshd)",
                         outcome="the file is written at exactly that name with exactly that "
                                 "content (a re-run changes nothing), or the step fails with the "
                                 "reason; no payload runs")
@FLEET
@given(hostile(CANARY).map(file_name), hostile(CANARY), hostile(CANARY, long=False))
def test_file_steps_quote_paths_and_content(fleet_run, tmp_path_factory, name, content, line):
    assume(name not in (".", "..") and "\n" not in line and line.strip())
    _, run = fleet_run
    folder = tmp_path_factory.mktemp("files")
    # one host: the fleet's hosts share this machine's files, two would race for the path
    path = run_file_steps(run, "host1", str(folder), name, content, line)
    if fits(name):  # read back locally, not through puppetops: the bytes at that very name
        lines = content.split("\n")[:-1] if content.endswith("\n") else content.split("\n")
        expected = content if line in lines else "\n".join([*lines, line]) + "\n"
        assert Path(path).read_bytes().decode() == expected
    CANARY.assert_absent()


@pytest.mark.reliability(fault="hostile run-as users (sudo -u) on commands (real sshd)",
                         outcome="the command fails for that host with sudo's reason; no "
                                 "payload runs")
@FLEET
@given(hostile(CANARY))
def test_run_as_is_one_word(fleet_run, user):
    _, run = fleet_run
    results = run.step(RunCommand("true", run_as=user), "fleet", catch_errors=True)
    assert_refused_everywhere(results)
    CANARY.assert_absent()


@pytest.mark.reliability(fault="hostile target names in the inventory (real sshd)",
                         outcome="refused at their line (whitespace, commas, non-ASCII), or the "
                                 "target runs under that name; no payload runs")
@FLEET
@given(hostile(CANARY, long=False))
def test_target_names_never_reach_a_shell(fleet_run, name):
    fleet, _ = fleet_run
    data = fleet.inventory_dict()
    data["groups"][0]["targets"][0]["name"] = name
    try:
        inventory = Inventory.from_dict(data)
    except InventoryError as exc:
        assert "name" in exc.reason
        return
    with Run(inventory, backoff=0.2, lock=False) as run:  # the module's Run holds the hosts' lock
        results = run.step(RunCommand("echo ran"), "fleet", catch_errors=True)
    assert [r.target for r in results][0] == name
    assert all(r.ok and r.stdout == "ran\n" for r in results), [r.message for r in results]
    CANARY.assert_absent()
