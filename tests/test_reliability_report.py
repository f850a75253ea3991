"""docs/reliability.md's machinery: the recorder plugin counts cases (hypothesis examples
included) and results, and `reliability-report` renders a results file as one table."""
from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

from helpers import REPO, cli

RESULTS = {
    "created": "2026-11-29 09:00:00 UTC",
    "tests": [
        {"nodeid": "t.py::test_a[1]", "fault": "sshd down", "outcome": "retried, ok",
         "lab": True, "result": "passed", "cases": 1},
        {"nodeid": "t.py::test_a[2]", "fault": "sshd down", "outcome": "retried, ok",
         "lab": True, "result": "passed", "cases": 1},
        {"nodeid": "t.py::test_b", "fault": "hostile | names", "outcome": "exit 2,\nnothing run",
         "lab": False, "result": "passed", "cases": 40},
        {"nodeid": "t.py::test_c", "fault": "veth cut", "outcome": "timeout", "lab": True,
         "result": "failed", "cases": 1},
        {"nodeid": "t.py::test_d", "fault": "disk full", "outcome": "clear error", "lab": False,
         "result": "skipped", "cases": 0, "reason": "needs root"},
    ],
}


def test_report_renders_one_row_per_fault_class(tmp_path):
    results, out = tmp_path / "results.json", tmp_path / "reliability.md"
    results.write_text(json.dumps(RESULTS))
    proc = cli("reliability-report", "--results", str(results), "--output", str(out))
    assert proc.returncode == 0, proc.stderr
    text = out.read_text()
    table = [line for line in text.splitlines() if line.startswith("| ")]
    assert table == [
        "| fault or input | cases | passed | outcome |",
        "| sshd down | 2 | 2 | retried, ok |",
        "| hostile \\| names | 40 | 40 | exit 2, nothing run |",
        "| veth cut | 1 | 0 (**1 test failed**) | timeout |",
        "| disk full | 0 | 0 (1 skipped) | clear error |",
    ]
    assert "5 tests, 43 cases, 42 passed" in text and "2026-11-29 09:00:00 UTC" in text


def test_report_refuses_an_unreadable_results_file(tmp_path):
    proc = cli("reliability-report", "--results", str(tmp_path / "none.json"),
               "--output", str(tmp_path / "out.md"))
    assert proc.returncode == 2 and "cannot read the results" in proc.stderr
    assert not (tmp_path / "out.md").exists()


@pytest.mark.slow
def test_recorder_counts_hypothesis_examples_and_results(tmp_path):
    (tmp_path / "conftest.py").write_text(f"import sys\nsys.path.insert(0, {str(REPO / 'tests')!r})\n"
                                          "pytest_plugins = ['reliability_plugin']\n")
    (tmp_path / "test_sample.py").write_text(textwrap.dedent("""
        import pytest
        from hypothesis import given, settings, strategies as st

        @pytest.mark.reliability(fault="f1", outcome="o1")
        @settings(max_examples=7, database=None)
        @given(st.integers())
        def test_property(n):
            assert isinstance(n, int)

        @pytest.mark.reliability(fault="f2", outcome="o2")
        @pytest.mark.parametrize("x", [1, 2])
        def test_plain(x):
            assert x != 2

        @pytest.mark.reliability(fault="f3", outcome="o3")
        def test_skipped():
            pytest.skip("no lab here")

        def test_untagged():
            pass
    """))
    out = tmp_path / "results.json"
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                           "--reliability-json", str(out), str(tmp_path)],
                          cwd=tmp_path, capture_output=True, text=True)
    assert proc.returncode == 1, proc.stdout  # test_plain[2] fails on purpose
    tests = {t["nodeid"].split("::")[1]: t for t in json.loads(out.read_text())["tests"]}
    assert {k: (t["fault"], t["result"], t["cases"]) for k, t in tests.items()} == {
        "test_property": ("f1", "passed", 7), "test_plain[1]": ("f2", "passed", 1),
        "test_plain[2]": ("f2", "failed", 1), "test_skipped": ("f3", "skipped", 0)}
    assert tests["test_skipped"]["reason"] == "no lab here"


@pytest.mark.slow
def test_recorder_refuses_a_marker_without_fault_and_outcome(tmp_path):
    (tmp_path / "conftest.py").write_text(f"import sys\nsys.path.insert(0, {str(REPO / 'tests')!r})\n"
                                          "pytest_plugins = ['reliability_plugin']\n")
    (tmp_path / "test_bad.py").write_text("import pytest\n\n@pytest.mark.reliability(fault='x')\n"
                                          "def test_x():\n    pass\n")
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                           "--reliability-json", str(tmp_path / "r.json"), str(tmp_path)],
                          cwd=tmp_path, capture_output=True, text=True)
    assert proc.returncode == 4 and "needs fault=" in proc.stderr + proc.stdout
