"""The run-wide failure limit and heartbeats of long steps, on real processes."""
from __future__ import annotations

import io
import json

import pytest

from puppetops import PlanFailure
from puppetops.output import HumanOutput, LogFileOutput, Output
from puppetops.result import FAILED, OK, SKIPPED
from puppetops.step import Call, Outcome, Step
from puppetops.steps import RunCommand

from helpers import fleet_run, local_run


def fail_on(*names, step="maybe-fail"):
    return Call(step, lambda ctx: ctx.run("false" if ctx.target.name in names else "true")
                .exit_code)


def test_failures_count_over_the_whole_run_not_per_step():
    """One new failure per step never passes a per-step 20 %; over the run the third does."""
    with local_run(count=10, max_fail_percentage=20) as run:
        run.step(fail_on("l1", step="one"), "all", catch_errors=True)
        run.step(fail_on("l2", step="two"), "all", catch_errors=True)
        with pytest.raises(PlanFailure) as caught:
            run.step(fail_on("l3", step="three"), "all", catch_errors=True)
        assert "more than 20% of targets failed in this run (3 of 10: l1, l2, l3)" in str(
            caught.value)
        with pytest.raises(PlanFailure):  # a plan that carries on gets no further
            run.step(Call("four", lambda ctx: "ran"), "all", catch_errors=True)
        after = run.steps[-1]
    assert after.name == "four" and {r.status for r in after} == {SKIPPED}
    assert all(r.not_run and "more than 20%" in r.message for r in after)


def test_once_passed_no_further_target_starts_even_within_the_step():
    with local_run(count=4, concurrency=1, max_fail_percentage=0) as run:
        with pytest.raises(PlanFailure):
            run.step(fail_on("l0"), "all", catch_errors=True)
        results = run.steps[-1]
    assert [r.status for r in results] == [FAILED, SKIPPED, SKIPPED, SKIPPED]
    assert run.summary()["failed_targets"] == ["l0"]
    assert run.summary()["not_run_targets"] == ["l1", "l2", "l3"]


def test_a_target_failing_several_steps_counts_once():
    with local_run(count=10, max_fail_percentage=10) as run:
        run.step(fail_on("l1", step="one"), "all", catch_errors=True)
        second = run.step(fail_on("l1", step="two"), "all", catch_errors=True)
    assert second.find("l1").status == FAILED and second.find("l0").status == OK


def test_the_limit_also_stops_a_pipeline():
    with local_run(count=4, concurrency=1, max_fail_percentage=25) as run:
        with pytest.raises(PlanFailure):
            run.pipeline([fail_on("l0", "l1"), Call("after", lambda ctx: "ran")], "all")
        combined = run.steps[-1]
    assert combined.find("l2").not_run and combined.find("l3").not_run


class _Waits(Step):
    name = "waits"
    waits_for = "the slow thing"

    def execute(self, ctx):
        ctx.run("sleep 1.6")
        ctx.waiting_for("the second phase")
        ctx.run("sleep 1.6")
        return Outcome(OK)


def _watched_run(fleet, tmp_path, interval):
    err, log = io.StringIO(), tmp_path / "run.jsonl"
    run = fleet_run(fleet, output=Output(HumanOutput(stderr=err, stdout=io.StringIO()),
                                         LogFileOutput(str(log))))
    run.executor.heartbeat.interval = interval
    return run, err, log


def _heartbeats(log):
    return [e for e in map(json.loads, log.read_text().splitlines()) if e["event"] == "heartbeat"]


@pytest.mark.slow
def test_a_long_step_beats_on_stderr_and_in_the_log(sshd_fleet, tmp_path):
    fleet = sshd_fleet(count=2)
    run, err, log = _watched_run(fleet, tmp_path, interval=0.5)
    with run:
        run.command("sleep 3", "all")
    beats = _heartbeats(log)
    for target in ("host1", "host2"):
        mine = [b for b in beats if b["target"] == target]
        assert len(mine) >= 3 and all(b["step"] == "command" for b in mine)
        elapsed = [b["elapsed"] for b in mine]
        assert elapsed == sorted(elapsed) and elapsed[0] >= 0.5
    assert "host1: command still running after" in err.getvalue()


@pytest.mark.slow
def test_a_heartbeat_says_what_the_step_waits_for(sshd_fleet, tmp_path):
    fleet = sshd_fleet(count=1)
    run, err, log = _watched_run(fleet, tmp_path, interval=0.5)
    with run:
        run.step(_Waits(), "all")
    said = [b["waiting_for"] for b in _heartbeats(log)]
    assert said[0] == "the slow thing" and said[-1] == "the second phase"
    assert "— waiting for the second phase" in err.getvalue()


def test_a_quick_step_has_no_heartbeat(sshd_fleet, tmp_path):
    fleet = sshd_fleet(count=2)
    run, err, log = _watched_run(fleet, tmp_path, interval=30)
    with run:
        run.step(RunCommand("true"), "all")
    assert _heartbeats(log) == [] and "still running" not in err.getvalue()
