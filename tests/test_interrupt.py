"""Stopping a run on request: SIGINT/SIGTERM to the CLI process, ``Run.interrupt`` from Python."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from puppetops import Run
from puppetops.errors import Interrupted
from puppetops.interrupt import Interruption, on_signals
from puppetops.testing.plans import PlanTester

from helpers import REPO

INVENTORY = {"targets": ["web1", "web2", "web3"]}


def wait_for_event(log, predicate, proc, timeout: float = 60.0) -> dict:
    """The first JSON-lines log event matching ``predicate``, once the process wrote it."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if log.exists():
            for line in log.read_text().split("\n")[:-1]:  # whole lines: one may be in writing
                event = json.loads(line)
                if predicate(event):
                    return event
        assert proc.poll() is None, f"exited {proc.returncode} first: {proc.communicate()}"
        time.sleep(0.1)
    raise AssertionError(f"no such event in {log}")


@pytest.mark.slow
@pytest.mark.reliability(fault="SIGINT/SIGTERM to the CLI during a step",
                         outcome="the target in flight finishes, the rest are skipped; summary, "
                                 "run_end and exit 130/143")
@pytest.mark.parametrize("signum, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_stops_the_run_at_a_step_boundary_and_it_still_reports(sshd_fleet, tmp_path,
                                                                         signum, code):
    fleet = sshd_fleet(count=3)
    inv = str(fleet.write_inventory(tmp_path / "inventory.yaml"))
    log, started, gate = tmp_path / "run.jsonl", tmp_path / "started", tmp_path / "gate"
    command = f"touch {started}; while [ ! -e {gate} ]; do sleep 0.1; done; echo finished"
    proc = subprocess.Popen([sys.executable, "-m", "puppetops", "command", command, "-t", "fleet",
                             "-i", inv, "--concurrency", "1", "--format", "json",
                             "--log-file", str(log)], cwd=REPO, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        # host1's command runs (step_start alone comes before its connection: on a busy box
        # the signal could beat it, and host1 would be skipped too)
        wait_for_event(log, lambda e: e["event"] == "step_start" and started.exists(), proc)
        proc.send_signal(signum)
        wait_for_event(log, lambda e: e["event"] == "message"
                       and e["text"].startswith("interrupted by"), proc)
        gate.touch()  # host1's command, in flight when the signal came, may now finish
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == code, err
    doc = json.loads(out)
    name = signal.Signals(signum).name
    assert doc["interrupted"] == name and doc["ok"] is False
    results = {r["target"]: r for r in doc["steps"][0]["results"]}
    assert results["host1"]["status"] == "ok" and results["host1"]["stdout"] == "finished\n"
    assert {results[h]["message"] for h in ("host2", "host3")} == {"not run: interrupted"}
    end = [json.loads(line) for line in log.read_text().splitlines()][-1]
    assert end["event"] == "run_end" and end["interrupted"] == name
    assert end["run_id"] == doc["run_id"] and len(doc["run_id"]) == 12
    assert f"interrupted by {name}" in err


def test_run_interrupt_skips_what_has_not_started_and_raises_interrupted():
    tester = PlanTester(INVENTORY).on("true")
    run = tester.run

    def stop_here(ctx):
        run.interrupt(signal.SIGTERM)
    with pytest.raises(Interrupted) as caught:
        run.each("asks to stop", stop_here, "web1")
    assert caught.value.exit_code == 143
    with pytest.raises(Interrupted):
        run.command("true", "all")  # nothing new starts
    assert tester.commands("web2") == []
    assert run.interrupted == "SIGTERM" and not run.ok
    assert run.summary()["interrupted"] == "SIGTERM"


def test_on_interrupt_undoes_and_a_second_interrupt_stops_the_undo():
    tester = PlanTester(INVENTORY).on("undo").on("work")
    run, undone = tester.run, []

    def undo():
        undone.append(run.command("undo", "web1")[0].status)
        run.interrupt()  # a second Ctrl-C while undoing
        run.command("undo", "web2")

    with pytest.raises(Interrupted):
        with run.on_interrupt(undo):
            run.command("work", "web1")
            run.interrupt()
            run.command("work", "web2")
    assert undone == ["ok"]
    assert tester.commands("web1") == ["work", "undo"] and tester.commands("web2") == []


def test_an_uninterrupted_run_names_its_id_and_no_interruption():
    run = Run(PlanTester(INVENTORY).inventory, lock=False)  # no real hosts to lock
    summary = run.summary()
    assert summary["interrupted"] is None and summary["run_id"] == run.id
    assert Run(PlanTester(INVENTORY).inventory, lock=False).id != run.id


def test_signals_raise_the_flag_are_acknowledged_and_the_old_handlers_come_back():
    interruption, said = Interruption(), []
    before = signal.getsignal(signal.SIGINT)
    with on_signals(interruption, said.append):
        os.kill(os.getpid(), signal.SIGTERM)
        os.kill(os.getpid(), signal.SIGINT)
        deadline = time.monotonic() + 30
        while len(said) < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
    assert interruption.name == "SIGTERM" and interruption.stop.is_set()  # the first one counts
    assert said[0].startswith("interrupted by SIGTERM: finishing the steps in flight")
    assert said[1].startswith("interrupted again (SIGINT): an undo in progress stops")
    assert signal.getsignal(signal.SIGINT) is before
