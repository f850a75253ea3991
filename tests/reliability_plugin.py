"""pytest plugin: record what each ``@pytest.mark.reliability`` test tried and how it ended.

``pytest -m reliability --reliability-json PATH`` writes one JSON document with, per test
item: its fault (class of fault or input tried), its outcome (what the operator is left
with), its result (passed, failed, error, skipped) and how many cases it ran — 1 per item,
or for a hypothesis test the number of examples its body actually ran (counted by wrapping
``hypothesis.inner_test``, the hook hypothesis documents for this). ``invoke
reliability-report`` (puppetops/cli/report_tasks.py) renders it into docs/reliability.md, so
the table is whatever the suite last did, never a claim written by hand.

Registered in tests/conftest.py; without ``--reliability-json`` it does nothing.
"""
from __future__ import annotations

import json
import os
import time
from typing import Any, Iterator

import pytest

MARKER = "reliability"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--reliability-json", metavar="PATH", default=None,
                     help="write the fault, outcome, result and case count of every test marked "
                          "reliability to PATH (JSON), for `invoke reliability-report`")


def pytest_configure(config: pytest.Config) -> None:
    path = config.getoption("--reliability-json")
    if path:
        # One process records every test: pytest-xdist workers (setup.cfg's -n) would each
        # write PATH with only their share run. xdist's own pytest_configure runs last and
        # starts no workers when dist is "no".
        if getattr(config.option, "dist", "no") != "no":
            config.option.dist, config.option.numprocesses = "no", 0
        config.pluginmanager.register(Recorder(path), "reliability-recorder")


class Recorder:
    """Collects one record per reliability test item; writes them when the session ends."""

    def __init__(self, path: str):
        self.path = path
        self.records: dict[str, dict[str, Any]] = {}

    def pytest_collection_modifyitems(self, items: list[pytest.Item]) -> None:
        for item in items:
            marker = item.get_closest_marker(MARKER)
            if marker is None:
                continue
            fault, outcome = marker.kwargs.get("fault"), marker.kwargs.get("outcome")
            if not (isinstance(fault, str) and fault and isinstance(outcome, str) and outcome):
                raise pytest.UsageError(f"{item.nodeid}: @pytest.mark.reliability needs "
                                        "fault=\"...\" and outcome=\"...\" (non-empty strings)")
            self.records[item.nodeid] = {"nodeid": item.nodeid, "fault": fault,
                                         "outcome": outcome, "lab": bool(item.get_closest_marker("lab")),
                                         "result": "not run", "cases": 0}

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_call(self, item: pytest.Item) -> Iterator[None]:
        record = self.records.get(item.nodeid)
        hypothesis = getattr(getattr(item, "obj", None), "hypothesis", None)
        if record is None or hypothesis is None:
            yield
            return
        inner, counted = hypothesis.inner_test, [0]

        def counting(*args: Any, **kwargs: Any) -> Any:
            from hypothesis.errors import UnsatisfiedAssumption
            try:
                return inner(*args, **kwargs)
            except UnsatisfiedAssumption:  # a rejected example is not a case
                counted[0] -= 1
                raise
            finally:
                counted[0] += 1

        hypothesis.inner_test = counting
        try:
            yield
        finally:
            hypothesis.inner_test = inner
            record["examples"] = counted[0]

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        record = self.records.get(report.nodeid)
        if record is None:
            return
        if report.when == "call" or report.outcome != "passed":
            if report.skipped:
                record["result"] = "skipped"
                record["reason"] = _skip_reason(report)
            elif report.failed:
                record["result"] = "failed" if report.when == "call" else "error"
            else:
                record["result"] = "passed"
        if report.when == "call":
            counted = record.pop("examples", 1)
            record["cases"] = 0 if report.skipped else counted

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        document = {"created": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
                    "tests": sorted(self.records.values(), key=lambda r: r["nodeid"])}
        tmp = f"{self.path}.tmp"
        with open(tmp, "w", encoding="utf-8") as handle:
            json.dump(document, handle, indent=1)
            handle.write("\n")
        os.replace(tmp, self.path)


def _skip_reason(report: pytest.TestReport) -> str:
    longrepr = report.longrepr
    if isinstance(longrepr, tuple) and len(longrepr) == 3:
        return str(longrepr[2]).removeprefix("Skipped: ")
    return str(longrepr or "")
