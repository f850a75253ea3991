"""The command line, run as a real process: formats, exit codes, lock, inventory errors."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from helpers import REPO, cli
from puppetops.cli.options import options_markdown


@pytest.fixture
def fleet_inventory(sshd_fleet, tmp_path):
    fleet = sshd_fleet(count=3)
    return fleet, str(fleet.write_inventory(tmp_path / "inventory.yaml"))


@pytest.mark.slow
def test_command_json_output_is_one_document_with_every_target(fleet_inventory):
    fleet, inv = fleet_inventory
    proc = cli("command", "echo hello", "--targets", "fleet", "--inventory", inv, "--format", "json")
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    results = doc["steps"][0]["results"]
    assert doc["ok"] and [r["target"] for r in results] == ["host1", "host2", "host3"]
    assert all(r["stdout"] == "hello\n" and r["status"] == "ok" for r in results)
    assert "[3/3, 0 failed]" in proc.stderr  # live progress goes to stderr


@pytest.mark.slow
def test_human_output_streams_progress_and_prints_a_summary(fleet_inventory):
    fleet, inv = fleet_inventory
    fleet.stop_host(1)
    proc = cli("command", "true", "-t", "all", "-i", inv, "--attempts", "1")
    assert proc.returncode == 1
    assert "host2: unreachable" in proc.stderr and "host1: ok" in proc.stderr
    assert "Failures:" in proc.stdout and "FAILED" in proc.stdout


@pytest.mark.slow
def test_log_file_has_a_json_line_per_target(fleet_inventory, tmp_path):
    _, inv = fleet_inventory
    log = tmp_path / "run.jsonl"
    assert cli("command", "true", "-t", "fleet", "-i", inv, "--log-file", str(log)).returncode == 0
    events = [json.loads(line) for line in log.read_text().splitlines()]
    targets = [e for e in events if e["event"] == "target"]
    assert sorted(e["target"] for e in targets) == ["host1", "host2", "host3"]
    assert all({"status", "duration", "step", "attempts"} <= e.keys() for e in targets)


@pytest.mark.slow
def test_upload_then_unchanged_on_second_run(fleet_inventory, tmp_path):
    _, inv = fleet_inventory
    src = tmp_path / "motd"
    src.write_text("managed by puppetops\n")
    dest = tmp_path / "uploaded-motd"
    first = cli("upload", str(src), str(dest), "-t", "host1", "-i", inv, "--format", "json")
    second = cli("upload", str(src), str(dest), "-t", "host1", "-i", inv, "--format", "json")
    assert json.loads(first.stdout)["steps"][0]["results"][0]["status"] == "changed"
    assert json.loads(second.stdout)["steps"][0]["results"][0]["status"] == "unchanged"
    assert dest.read_text() == "managed by puppetops\n"
    chmod = cli("upload", str(src), str(dest), "-t", "host1", "-i", inv, "--mode", "0640")
    assert chmod.returncode == 0, chmod.stderr
    assert dest.stat().st_mode & 0o7777 == 0o640


@pytest.mark.slow
def test_an_unknown_target_exits_2_and_suggests_names(fleet_inventory):
    _, inv = fleet_inventory
    proc = cli("command", "true", "-t", "hots1", "-i", inv, "--format", "json")
    assert proc.returncode == 2 and proc.stdout == ""
    assert "host1" in proc.stderr


@pytest.mark.slow
def test_inventory_json_has_exactly_the_documented_shape(fleet_inventory):
    _, inv = fleet_inventory
    proc = cli("inventory", "-i", inv, "--targets", "host2", "--format", "json")
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert list(doc) == ["targets"] and list(doc["targets"]) == ["host2"]
    assert set(doc["targets"]["host2"]) == {"uri", "host", "port", "user", "transport", "groups",
                                            "vars", "facts", "config"}
    assert doc["targets"]["host2"]["groups"] == ["all", "fleet"]


@pytest.mark.parametrize("text, line, words", [
    ("version: 3\n", 1, "Unsupported version"),
    ("groups:\n  - name: a\n    targets: [x]\n  - name: a\n", 4, "redefine group"),
    ("nodes: [a]\n", 1, "nodes"),
    ("groups:\n  - name: a b\n", 2, "Illegal character"),
    ("targets:\n  - name: x\n    vars: [1]\n", 3, "vars"),
    ("groups: [\n", None, ""),
])
@pytest.mark.slow
def test_an_invalid_inventory_exits_2_naming_file_and_line(tmp_path, text, line, words):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    proc = cli("inventory", "-i", str(path), "--format", "json")
    assert proc.returncode == 2 and proc.stdout == ""
    assert str(path) in proc.stderr and words in proc.stderr
    if line is not None:
        assert f"{path}:{line}" in proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.mark.slow
def test_plan_takes_bare_key_value_parameters(fleet_inventory):
    _, inv = fleet_inventory
    proc = cli("plan", "facts", "targets=host1", "-i", inv, "--format", "json")
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["plans"][0]["name"] == "facts" and doc["plans"][0]["ok"]
    facts = doc["steps"][0]["results"][0]["value"]
    assert facts["os_id"] and facts["init"] in ("systemd", "sysv")


@pytest.mark.slow
def test_plan_with_a_bad_parameter_exits_2(fleet_inventory):
    _, inv = fleet_inventory
    proc = cli("plan", "facts", "colour=blue", "-i", inv)
    assert proc.returncode == 2 and "no parameter colour" in proc.stderr
    proc = cli("plan", "factz", "-i", inv)
    assert proc.returncode == 2 and "facts" in proc.stderr


def test_invoke_in_the_repo_has_the_same_commands():
    proc = subprocess.run([sys.executable, "-m", "invoke", "--list"], cwd=REPO,
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    for name in ("inventory", "plan", "plans", "command", "upload", "facts"):
        assert f"  {name}" in proc.stdout


def test_the_readme_options_table_matches_the_option_table():
    from puppetops.cli.report_tasks import readme_table
    section = readme_table((REPO / "README.md").read_text(), "options-table")
    assert section == options_markdown(), \
        "README.md's options table is out of date: run `invoke readme-tables`"


def _readme_copy(tmp_path, edit):
    """A copy of the README with ``edit(text)`` applied, and its text before the edit."""
    text = (REPO / "README.md").read_text()
    copy = tmp_path / "README.md"
    copy.write_text(edit(text))
    return copy, text


def test_readme_tables_rewrites_stale_tables_in_place_and_nothing_else(tmp_path):
    from puppetops.cli.report_tasks import readme_table
    from puppetops.puppet.vars import markdown
    copy, text = _readme_copy(tmp_path, lambda t: t.replace(
        "| `-n`, `--noop` |", "| `-n`, `--no-op` |").replace("| `lb_name` |", "| `lb_nam` |"))
    assert copy.read_text() != text  # both tables really were stale
    proc = cli("readme-tables", "--readme", str(copy))
    assert proc.returncode == 0, proc.stderr
    assert f"wrote {copy}" in proc.stderr
    rewritten = copy.read_text()
    assert readme_table(rewritten, "options-table") == options_markdown()
    assert readme_table(rewritten, "vars-table") == markdown()
    assert rewritten == text  # the README is up to date, so the rewrite gives it back exactly
    again = cli("readme-tables", "--readme", str(copy))
    assert again.returncode == 0 and "tables up to date" in again.stderr
    assert copy.read_text() == text


def test_readme_tables_marks_each_table_as_generated(tmp_path):
    copy, _ = _readme_copy(tmp_path, lambda t: t.replace(
        t[t.index("<!-- vars-table"):t.index("\n", t.index("<!-- vars-table"))],
        "<!-- vars-table -->"))
    assert cli("readme-tables", "--readme", str(copy)).returncode == 0
    assert "<!-- vars-table: generated by `invoke readme-tables` from " \
           "puppetops.puppet.vars.VARS; do not edit by hand -->\n| var |" in copy.read_text()


@pytest.mark.reliability(fault="README without a table's markers", outcome="exit 2 naming the "
                         "file and the missing marker, the file untouched")
def test_readme_tables_without_markers_is_a_usage_error_that_writes_nothing(tmp_path):
    copy, _ = _readme_copy(tmp_path, lambda t: t.replace("<!-- /vars-table -->", ""))
    before = copy.read_text()
    proc = cli("readme-tables", "--readme", str(copy))
    assert proc.returncode == 2
    assert proc.stderr.strip() == f"error: {copy}: no <!-- vars-table --> ... " \
                                  "<!-- /vars-table --> markers; put them where the table goes"
    assert copy.read_text() == before


_NOWHERE = """\
config: {{ssh: {{known-hosts-file: {known_hosts}}}}}
groups:
  - name: main
    targets: [{{name: main1, uri: "127.0.0.1:1"}}]
  - name: compilers
    targets: [{{name: compiler1, uri: "127.0.0.1:1"}}]
  - name: agents
    targets: [{{name: agent1, uri: "127.0.0.1:1"}}]
  - name: loadbalancers
    targets: [{{name: lb1, uri: "127.0.0.1:1"}}]
"""


@pytest.mark.reliability(fault="plan parameters that do not go together",
                         outcome="exit 2 with one line before the run starts: no plan header, "
                                 "no log line, no host contacted")
@pytest.mark.parametrize("args, expected", [
    (("status", "--warn-days", "10", "--error-days", "20"),
     "error: error_days (20) must not be more than warn_days (10)"),
    (("plan", "status", "warn_days=10", "error_days=20"),
     "error: error_days (20) must not be more than warn_days (10)"),
    (("purge-agent",), "error: purge_agent: give the agents (--targets) or their certnames "
                       "(certnames=NAME[,NAME...]) to purge"),
    (("plan", "purge_agent"), "error: purge_agent: give the agents (--targets) or their "
                              "certnames (certnames=NAME[,NAME...]) to purge"),
    (("remove-environment", "--env="), "error: --env: invalid environment name ''"),
    (("plan", "remove_environment", "env=a-b"),
     "error: plan remove_environment: env: invalid environment name 'a-b'"),
    (("install-webhook", "--port", "0"), "error: port: expected 1 to 65535, got 0"),
    (("install-webhook", "--bind", "a b"),
     "error: bind: expected an IP address or host name, got 'a b'"),
])
def test_a_usage_error_in_plan_parameters_comes_before_the_run_starts(tmp_path, args, expected):
    (tmp_path / "known_hosts").write_text("")
    inventory = tmp_path / "inventory.yaml"
    inventory.write_text(_NOWHERE.format(known_hosts=tmp_path / "known_hosts"))
    log = tmp_path / "run.jsonl"
    proc = cli(*args, "-i", str(inventory), "--log-file", str(log), "--attempts", "1")
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.strip().startswith(expected) and len(proc.stderr.splitlines()) == 1, \
        proc.stderr
    assert proc.stdout == "" and (not log.exists() or log.read_text() == "")
