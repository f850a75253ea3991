"""Run options on the command line, as a real process on real sshd hosts: target specs that
select nothing, log files that cannot be written, closed pipes, honest summaries, --rerun and
--max-fail-percentage."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from helpers import REPO, cli

reliability = pytest.mark.reliability


@pytest.fixture
def project(sshd_fleet, tmp_path):
    """Three sshd hosts, an inventory with the groups the plans use, and a command that
    fails on a host while ``fail/<its address>`` exists."""
    fleet = sshd_fleet(count=3)
    data = fleet.inventory_dict()
    data["groups"] += [{"name": "main", "targets": ["host1"]},
                       {"name": "compilers", "targets": ["host2", "host3"]},
                       {"name": "loadbalancers", "targets": ["host1"]},
                       {"name": "empty", "targets": []}]
    inventory = tmp_path / "inventory.yaml"
    inventory.write_text(yaml.safe_dump(data, sort_keys=False))
    (tmp_path / "fail").mkdir()
    return fleet, str(inventory), tmp_path


def failing_on(project, *indexes):
    """A command that fails on the fleet hosts of these indexes (and only there)."""
    fleet, _, folder = project
    for marker in (folder / "fail").iterdir():
        marker.unlink()
    for i in indexes:
        (folder / "fail" / fleet.hosts[i].address).touch()
    return f"test ! -e {folder}/fail/$(echo $SSH_CONNECTION | cut -d' ' -f3)"


def outcomes(folder: Path) -> dict[str, str]:
    document = json.loads((folder / ".puppetops" / "rerun.json").read_text())
    return {e["target"]: e["status"] for e in document["targets"]}


def ran_on(proc) -> list[str]:
    return [r["target"] for r in json.loads(proc.stdout)["steps"][0]["results"]]


# -- target specs that select nothing --------------------------------------------------------

@reliability(fault="a target spec that selects nothing (-t '', x='', an empty group)",
             outcome="exit 2 naming the option, nothing run, nothing on stdout")
@pytest.mark.parametrize("args", [
    ("command", "touch {folder}/RAN", "-t", ""),
    ("command", "touch {folder}/RAN", "-t", " , "),
    ("command", "touch {folder}/RAN", "-t", "empty"),
    ("facts", "-t", ""),
    ("inventory", "-t", ""),
    ("deploy-code", "-t", ""),
    ("deploy-code", "--loadbalancers", ""),
    ("deploy-code", "--main", "empty"),
    ("rotate-lb-member", "--loadbalancers", ""),
    ("add-compiler", "--main", ""),
    ("configure-lb", "--compilers", ""),
    ("enroll-agent", "-t", ""),
    ("plan", "facts", "targets="),
    ("plan", "deploy_code", "loadbalancers="),
])
@pytest.mark.slow
def test_a_spec_that_selects_nothing_is_a_usage_error(project, args):
    _, inventory, folder = project
    proc = cli(*(a.format(folder=folder) for a in args), "-i", inventory, cwd=folder)
    assert proc.returncode == 2, proc.stderr
    assert "selects no targets" in proc.stderr and "Traceback" not in proc.stderr
    assert proc.stdout == "" and not (folder / "RAN").exists()
    assert not (folder / ".puppetops").exists()  # no run happened, so none was recorded


# -- the log file --------------------------------------------------------------------------

@reliability(fault="--log-file in a missing directory, or a path that cannot be appended to",
             outcome="exit 2 before anything runs, one line naming the file and what to do")
@pytest.mark.parametrize("where, words", [
    ("missing/dir/run.jsonl", "does not exist; create it"),
    ("inventory.yaml/run.jsonl", "is not a directory"),
    ("fail", "cannot append to it"),                             # a directory
])
@pytest.mark.slow
def test_an_unusable_log_file_stops_before_anything_runs(project, where, words):
    _, inventory, folder = project
    log = folder / where
    proc = cli("command", f"touch {folder}/RAN", "-t", "all", "-i", inventory,
               "--log-file", str(log))
    assert proc.returncode == 2 and proc.stdout == ""
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and str(log) in lines[0] and words in lines[0]
    assert not (folder / "RAN").exists()


# -- closed pipes ---------------------------------------------------------------------------

def _with_closed(stream: str, *args: str):
    """Run the console script with stdout or stderr a pipe nobody reads any more."""
    read, write = os.pipe()
    os.close(read)
    try:
        kwargs = {"stdout": write, "stderr": subprocess.PIPE} if stream == "stdout" else \
            {"stdout": subprocess.PIPE, "stderr": write}
        return subprocess.run([sys.executable, "-m", "puppetops", *args], cwd=REPO, text=True,
                              timeout=120, **kwargs)
    finally:
        os.close(write)


@reliability(fault="stdout closed by its reader (puppetops --help | head)",
             outcome="no traceback")
def test_help_into_a_closed_pipe_ends_quietly():
    proc = _with_closed("stdout", "--help")
    assert proc.stderr == ""


@pytest.mark.slow
@reliability(fault="stdout or stderr closed by its reader during a run",
             outcome="the run completes: exit code, log file and rerun file as usual; no "
                     "traceback")
@pytest.mark.parametrize("stream", ["stdout", "stderr"])
def test_a_run_into_a_closed_pipe_completes(project, stream):
    _, inventory, folder = project
    log = folder / "run.jsonl"
    proc = _with_closed(stream, "facts", "-t", "fleet", "-i", inventory, "--log-file", str(log))
    assert proc.returncode == 0
    seen = proc.stderr if stream == "stdout" else proc.stdout
    assert "Traceback" not in seen and "Exception ignored" not in seen
    if stream == "stderr":
        assert "ok: 3 target(s)" in proc.stdout
    assert json.loads(log.read_text().splitlines()[-1])["event"] == "run_end"
    assert outcomes(folder) == {"host1": "success", "host2": "success", "host3": "success"}


# -- what the summary says -------------------------------------------------------------------

@pytest.mark.slow
def test_the_summary_counts_failed_targets_not_rows(project):
    _, inventory, folder = project
    proc = cli("command", failing_on(project, 1), "-t", "all", "-i", inventory)
    assert proc.returncode == 1
    assert proc.stdout.strip().splitlines()[-1].startswith("FAILED: 1 of 3 target(s) failed,")
    proc = cli("command", failing_on(project, 1), "-t", "all", "-i", inventory, "--format", "json")
    doc = json.loads(proc.stdout)
    assert doc["failed_targets"] == ["host2"] and doc["targets"] == 3


@pytest.mark.slow
def test_a_noop_summary_says_nothing_was_changed(project):
    _, inventory, folder = project
    proc = cli("command", "true", "-t", "all", "-i", inventory, "--noop")
    assert proc.returncode == 0
    assert proc.stdout.strip().splitlines()[-1].startswith("ok (noop: nothing was changed): 3")
    proc = cli("command", "true", "-t", "all", "-i", inventory, "--noop", "--format", "json")
    assert json.loads(proc.stdout)["noop"] is True


@pytest.mark.slow
def test_a_run_stopped_before_its_first_step_says_why_not_zero_targets(project):
    fleet, inventory, folder = project
    fleet.stop_host(0)  # main: the infrastructure lock cannot be taken
    proc = cli("deploy-code", "-n", "-i", inventory, "--attempts", "1")
    assert proc.returncode == 1
    last = proc.stdout.strip().splitlines()[-1]
    assert last.startswith("FAILED (noop: nothing was changed): stopped before any step: "
                           "host1: cannot take the infrastructure lock"), last
    assert "0 target(s)" not in proc.stdout


# -- --rerun ----------------------------------------------------------------------------------

@pytest.mark.slow
def test_rerun_failure_runs_the_last_runs_failed_targets_only(project):
    _, inventory, folder = project
    first = cli("command", failing_on(project, 1), "-t", "all", "-i", inventory)
    assert first.returncode == 1  # a failed run records its outcomes too
    assert outcomes(folder) == {"host1": "success", "host2": "failure", "host3": "success"}
    assert [p.name for p in (folder / ".puppetops").iterdir()] == ["rerun.json"]  # no temp left
    rehearsal = cli("command", "true", "-t", "all", "-i", inventory, "--noop")
    assert rehearsal.returncode == 0  # a noop run changes nothing, the rerun file included
    assert outcomes(folder) == {"host1": "success", "host2": "failure", "host3": "success"}

    fixed = cli("command", failing_on(project), "--rerun", "failure", "-i", inventory,
                "--format", "json", cwd=REPO)  # any working directory: the file is the project's
    assert fixed.returncode == 0, fixed.stderr
    assert ran_on(fixed) == ["host2"] and outcomes(folder) == {"host2": "success"}

    nothing = cli("command", "true", "--rerun", "failure", "-i", inventory)
    assert nothing.returncode == 2 and "no target with that outcome" in nothing.stderr
    again = cli("plan", "facts", "--rerun", "success", "-i", inventory, "--format", "json")
    assert again.returncode == 0 and ran_on(again) == ["host2"]


PLAN = '''
from puppetops.plan_registry import plan


@plan
def two_phase(run, targets: str = "compilers", main: str = "main", main_fails: bool = False):
    """Work on the targets, then on main, then on the targets again."""
    run.command("true", targets)
    run.command("false" if main_fails else "true", main)
    run.command("true", targets)
'''


@pytest.mark.slow
def test_a_plan_records_its_own_targets_and_a_stopped_plan_all_of_them(project):
    """main is not what the plan was for; and once main failed nobody can tell which
    compilers were done, so all of them are to be run again."""
    _, inventory, folder = project
    (folder / "plans").mkdir()
    (folder / "plans" / "two_phase.py").write_text(PLAN)
    proc = cli("plan", "two_phase", "main_fails=true", "-i", inventory, cwd=folder)
    assert proc.returncode == 1
    assert outcomes(folder) == {"host2": "failure", "host3": "failure"}
    proc = cli("plan", "two_phase", "--rerun", "failure", "-i", inventory, "--format", "json",
               cwd=folder)
    assert proc.returncode == 0, proc.stderr
    assert ran_on(proc) == ["host2", "host3"]
    assert outcomes(folder) == {"host2": "success", "host3": "success"}


@pytest.mark.slow
@reliability(fault="--rerun with no previous run, a foreign or corrupt rerun file, an "
                   "unknown value, or together with --targets",
             outcome="exit 2 with one line saying what to do; nothing run")
def test_rerun_refuses_what_it_cannot_answer(project):
    _, inventory, folder = project
    marker = folder / "RAN"
    proc = cli("command", f"touch {marker}", "--rerun", "failure", "-i", inventory)
    assert proc.returncode == 2 and "no previous run recorded" in proc.stderr
    proc = cli("command", f"touch {marker}", "-i", inventory)
    assert proc.returncode == 2 and "--targets is required (or --rerun" in proc.stderr
    proc = cli("command", f"touch {marker}", "--rerun", "failed", "-i", inventory)
    assert proc.returncode == 2 and "expected one of failure, success, all" in proc.stderr

    assert cli("command", "true", "-t", "all", "-i", inventory).returncode == 0
    proc = cli("command", f"touch {marker}", "--rerun", "all", "-t", "host1", "-i", inventory)
    assert proc.returncode == 2 and "give one of them" in proc.stderr
    other = folder / "other.yaml"
    other.write_text(Path(inventory).read_text())
    proc = cli("command", f"touch {marker}", "--rerun", "all", "-i", str(other))
    assert proc.returncode == 2 and "records a run of inventory" in proc.stderr
    (folder / ".puppetops" / "rerun.json").write_text("{not json")
    proc = cli("command", f"touch {marker}", "--rerun", "all", "-i", inventory)
    assert proc.returncode == 2 and "cannot read" in proc.stderr
    assert "Traceback" not in proc.stderr and not marker.exists()


# -- --max-fail-percentage --------------------------------------------------------------------

@pytest.mark.slow
def test_max_fail_percentage_stops_before_more_targets_start(project):
    _, inventory, folder = project
    proc = cli("command", failing_on(project, 0), "-t", "all", "-i", inventory,
               "--concurrency", "1", "--max-fail-percentage", "0", "--format", "json")
    assert proc.returncode == 1
    results = json.loads(proc.stdout)["steps"][0]["results"]
    assert [r["status"] for r in results] == ["failed", "skipped", "skipped"]
    assert "not run: more than 0% of targets failed in this run" in results[1]["message"]
    assert outcomes(folder) == {"host1": "failure", "host2": "failure", "host3": "failure"}
    proc = cli("command", "true", "-t", "all", "-i", inventory, "--max-fail-percentage", "101")
    assert proc.returncode == 2 and "from 0 to 100" in proc.stderr
