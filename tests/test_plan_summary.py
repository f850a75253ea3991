"""``@plan`` owns a plan's summary: a plan written without any bookkeeping returns the same
one result per target as one that kept its own step results and summarised them."""
from __future__ import annotations

import re

from puppetops import Notes, ResultSet
from puppetops.plan_registry import plan
from puppetops.result import summary
from puppetops.steps import FileContent
from puppetops.testing.plans import PlanTester

HOSTS = {"targets": ["web1", "web2", "web3"]}


def _steps(run) -> None:
    """Three steps: web1's file changes, web2's is already right, web3 fails the command."""
    run.step(FileContent("/etc/motd", "hi\n"), "all", catch_errors=True)
    run.command("uptime", "all", catch_errors=True)


@plan(name="summary_test_inner")
def inner(run) -> None:
    run.command("id", "web1")


@plan(name="summary_test_without_bookkeeping")
def without_bookkeeping(run) -> None:
    _steps(run)
    run.plan(inner)


@plan(name="summary_test_with_notes")
def with_notes(run) -> Notes:
    _steps(run)
    return Notes({"web1": "at abc"}, {"web1": {"production": "abc"}})


@plan(name="summary_test_own_results")
def own_results(run) -> ResultSet:
    return run.command("id", "web1")


def _tester() -> PlanTester:
    tester = PlanTester(HOSTS, strict=False)
    motd = "98ea6e4f216f2fb4b69fff9b3a44842c38686ca685f3f55dc48c5d3fb1107be4\n644 root:root\n"
    tester.on(re.compile("sha256sum"), stdout=motd, targets=["web1", "web2"])
    tester.on(re.compile("sha256sum"), stdout="", targets=["web1"], times=1)  # later rules first
    tester.on(re.compile("sha256sum"), exit_code=1, stderr="boom", targets=["web3"])
    tester.on("uptime", stdout="up")
    tester.on("id", stdout="uid=0")
    return tester


def _rows(results: ResultSet) -> list[tuple]:
    return [(r.target, r.step, r.status, r.message, r.noop, r.value) for r in results]


def test_a_plan_without_bookkeeping_gets_the_summary_a_hand_kept_one_had():
    by_hand = _tester()
    start = len(by_hand.run.steps)
    _steps(by_hand.run)
    by_hand.run.command("id", "web1")
    expected = summary("summary_test_without_bookkeeping", by_hand.run.steps[start:])

    got = _tester().run_plan("summary_test_without_bookkeeping")
    assert _rows(got) == _rows(expected)
    statuses = {r.target: r.status for r in got}
    assert statuses == {"web1": "changed", "web2": "unchanged", "web3": "failed"}
    assert got.name == "summary_test_without_bookkeeping" and not got.ok


def test_notes_a_plan_returns_go_into_its_summary():
    got = {r.target: r for r in _tester().run_plan("summary_test_with_notes")}
    assert got["web1"].message.startswith("at abc — ") and "motd" in got["web1"].message
    assert got["web1"].value == {"production": "abc"}
    assert got["web2"].message == "" and got["web2"].value is None


def test_a_plan_that_returns_its_own_results_keeps_them():
    got = _tester().run_plan("summary_test_own_results")
    assert [(r.target, r.step, r.stdout) for r in got] == [("web1", "command", "uid=0")]
