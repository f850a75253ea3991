"""Executor policies on the local transport: real processes, no SSH needed."""
from __future__ import annotations

import time

import pytest

from puppetops import PlanFailure
from puppetops.result import FAILED, OK, SKIPPED, Result, ResultSet
from puppetops.step import Call
from puppetops.steps import RunCommand

from helpers import local_run


def fail_on(*names):
    return Call("maybe-fail", lambda ctx: ctx.run("false" if ctx.target.name in names else "true")
                .exit_code)


def test_a_failing_step_stops_the_plan_but_reports_every_target():
    with local_run() as run:
        with pytest.raises(PlanFailure) as caught:
            run.step(fail_on("l1"), "all")
    rs = caught.value.results
    assert [r.status for r in rs] == [OK, FAILED, OK, OK]
    assert "l1" in str(caught.value)


def test_catch_errors_returns_the_failures_instead():
    with local_run() as run:
        rs = run.step(fail_on("l1", "l2"), "all", catch_errors=True)
    assert rs.error_set.names == ["l1", "l2"] and rs.ok_set.names == ["l0", "l3"]


def test_max_fail_percentage_tolerates_up_to_the_threshold():
    with local_run() as run:
        rs = run.step(fail_on("l1"), "all", max_fail_percentage=25)
        assert not rs.ok
        with pytest.raises(PlanFailure):
            run.step(fail_on("l1", "l2"), "all", max_fail_percentage=25)


def test_rolling_batches_stop_after_a_failed_batch():
    with local_run(count=6) as run:
        with pytest.raises(PlanFailure) as caught:
            run.step(fail_on("l2"), "all", batch_size=2)
    statuses = [r.status for r in caught.value.results]
    assert statuses == [OK, OK, FAILED, OK, SKIPPED, SKIPPED]


def test_batches_never_run_more_than_batch_size_at_once(tmp_path):
    marker = tmp_path / "running"
    marker.mkdir()
    script = (f"touch {marker}/$$; sleep 0.3; ls {marker} | wc -l > {tmp_path}/seen.$$; "
              f"rm {marker}/$$")
    with local_run(count=6) as run:
        run.step(RunCommand(script), "all", batch_size=2)
    seen = [int(p.read_text()) for p in tmp_path.glob("seen.*")]
    assert len(seen) == 6 and max(seen) <= 2


@pytest.mark.slow
def test_concurrency_caps_parallel_targets():
    with local_run(count=6, concurrency=2) as run:
        start = time.monotonic()
        run.command("sleep 0.4", "all")
        elapsed = time.monotonic() - start
    assert elapsed >= 1.2  # 6 targets, 2 at a time, 0.4 s each → three rounds


@pytest.mark.slow
def test_free_pipeline_lets_fast_targets_finish_while_a_slow_one_works(tmp_path):
    slow = Call("slow-first", lambda ctx: ctx.run("sleep 1.5" if ctx.target.name == "l0" else "true"))
    stamp = Call("stamp", lambda ctx: time.monotonic())
    with local_run(count=3) as run:
        start = time.monotonic()
        first, second = run.pipeline([slow, stamp], "all")
    fast_done = [r.value - start for r in second if r.target != "l0"]
    assert max(fast_done) < 1.0 and second.find("l0").value - start >= 1.5


@pytest.mark.slow
def test_lockstep_pipeline_waits_for_every_target_between_steps():
    slow = Call("slow-first", lambda ctx: ctx.run("sleep 1.0" if ctx.target.name == "l0" else "true"))
    stamp = Call("stamp", lambda ctx: time.monotonic())
    with local_run(count=3) as run:
        start = time.monotonic()
        _, second = run.pipeline([slow, stamp], "all", lockstep=True)
    assert min(r.value - start for r in second) >= 1.0


def test_a_pipeline_stops_a_target_at_its_first_failure():
    with local_run(count=2) as run:
        with pytest.raises(PlanFailure):
            run.pipeline([fail_on("l1"), Call("after", lambda ctx: "ran")], "all")
        sets = run.steps[-1]
    assert sets.find("l1").status == FAILED


def test_failing_steps_are_not_retried_unless_they_say_so():
    counter = {"n": 0}

    def flaky(ctx):
        counter["n"] += 1
        ctx.run("false")

    with local_run(count=1, attempts=3) as run:
        rs = run.step(Call("flaky", flaky), "all", catch_errors=True)
        assert rs[0].attempts == 1 and counter["n"] == 1
        rs = run.step(Call("flaky", flaky, retry_on_failure=True), "all", catch_errors=True)
        assert rs[0].attempts == 3 and counter["n"] == 4


@pytest.mark.slow
def test_the_run_timeout_cuts_remote_calls_short_and_skips_later_steps():
    with local_run(count=2, timeout=1.0) as run:
        start = time.monotonic()
        rs = run.command("sleep 20", "all", catch_errors=True)
        later = run.command("true", "all", catch_errors=True)
    assert time.monotonic() - start < 5
    assert all(r.status == FAILED for r in rs)
    assert all(r.status == SKIPPED for r in later)


def test_results_serialise_and_tabulate():
    with local_run(count=2) as run:
        rs = run.command("echo hi", "all")
    doc = rs.to_dict()
    assert doc["ok"] and doc["counts"]["ok"] == 2 and doc["results"][0]["stdout"] == "hi\n"
    assert "l0" in rs.table() and "ok" in rs.table()


@pytest.mark.reliability(fault="programming error in a step (AttributeError)",
                         outcome="that target failed as an internal error, tried once; the "
                                 "other targets' results intact")
def test_a_bug_in_a_step_is_an_internal_error_and_is_not_retried():
    tries = []

    def buggy(ctx):
        tries.append(ctx.target.name)
        return None.stdout if ctx.target.name == "l1" else "fine"

    with local_run() as run:
        rs = run.step(Call("buggy", buggy, retry_on_failure=True), "all", catch_errors=True)
    bad = rs.find("l1")
    assert (bad.status, bad.attempts, tries.count("l1")) == (FAILED, 1, 1)
    assert bad.message == "internal error: AttributeError: 'NoneType' object has no attribute 'stdout'"
    assert [r.value for r in rs.ok_set] == ["fine"] * 3


def test_details_shows_each_failure_whole():
    rs = ResultSet([Result("h1", "s", "ok"), Result("h2", "s", "failed", message="first\nsecond")])
    text = rs.details()
    assert text.startswith(rs.table()) and "h2 — s:\nfirst\nsecond" in text and "h1 —" not in text
