"""The command line's flag contract, as real processes (the ``puppetops`` script and stock
``invoke`` in the repository) on real sshd hosts: one-letter flags mean the same in every
command, ``--dry`` never runs anything, an unknown option or a misplaced one is a usage error
and never a remote command, and every plan is a command generated from its own signature."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest
import yaml

from helpers import REPO, cli

reliability = pytest.mark.reliability


def invoke(*args: str, cwd=REPO) -> subprocess.CompletedProcess:
    """Stock Invoke with the repository's tasks.py, in ``cwd`` (where ./plans is looked for)."""
    return subprocess.run([sys.executable, "-m", "invoke", "--search-root", str(REPO), *args],
                          cwd=cwd, capture_output=True, text=True, timeout=120,
                          env=dict(os.environ))


PROGRAMS = {"puppetops": cli, "invoke": invoke}


@pytest.fixture
def project(sshd_fleet, tmp_path):
    """Three sshd hosts in the groups the plans use; ``marker`` exists once a command ran."""
    fleet = sshd_fleet(count=3)
    data = fleet.inventory_dict()
    data["groups"] += [{"name": "main", "targets": ["host1"]},
                       {"name": "compilers", "targets": ["host2", "host3"]},
                       {"name": "loadbalancers", "targets": ["host1"]}]
    inventory = tmp_path / "inventory.yaml"
    inventory.write_text(yaml.safe_dump(data, sort_keys=False))
    return str(inventory), tmp_path


def one_line(proc) -> str:
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert "Traceback" not in proc.stderr and proc.stdout == ""
    return lines[0]


# -- one-letter flags ---------------------------------------------------------------------

def test_one_letter_flags_are_the_fixed_set_and_mean_the_same_everywhere():
    from puppetops.cli import namespace
    from puppetops.cli.options import RUN_OPTION_NAMES, SHORT_FLAGS
    run_commands = 0
    for task in namespace.tasks.values():
        arguments = task.get_arguments()
        for argument in arguments:
            letters = [n for n in argument.names if len(n) == 1]
            expected = [SHORT_FLAGS[argument.name]] if argument.name in SHORT_FLAGS and \
                not argument.positional else []
            assert letters == expected, (task.name, argument.names)
        names = {a.name for a in arguments}
        if "noop" in names:
            run_commands += 1
            assert set(RUN_OPTION_NAMES) <= names, task.name
    # command, upload, facts, plan and one per plan (deploy-code, rotate-lb-member, ...)
    assert run_commands >= 12


def test_an_option_named_inventory_is_always_the_inventory_to_read():
    from puppetops.cli import namespace
    from puppetops.cli.options import option_help
    from puppetops.cli.parsing import TypedTask
    takers = {name: task for name, task in namespace.tasks.items()
              if any(argument.name == "inventory" for argument in task.get_arguments())}
    assert "inventory" in takers and "deploy-code" in takers and "lab-up" not in takers
    for name, task in takers.items():
        if isinstance(task, TypedTask):  # (Invoke's own tasks hand their help out only once)
            assert [p.help for p in task.params if p.name == "inventory"] == \
                [option_help("inventory")], name


def _options(task_name: str) -> dict[str, str]:
    from puppetops.cli import namespace
    return {a.name: a.help for a in namespace.tasks[task_name].get_arguments()}


@pytest.mark.parametrize("command, plan", [("status", "status"), ("facts", "facts")])
def test_a_command_made_from_a_plan_takes_the_plans_parameters_as_the_plan_declares_them(
        command, plan):
    from puppetops.cli.options import RUN_OPTION_NAMES
    from puppetops.plan_registry import get_plan
    declared = get_plan(plan).parameters
    options = _options(command)
    assert set(options) - set(RUN_OPTION_NAMES) == set(declared)
    for name, p in declared.items():
        assert options[name].startswith(p.help), (name, options[name], p.help)


def test_the_demo_takes_lab_ups_options_as_declared_there_and_three_run_options():
    demo, lab_up = _options("demo"), _options("lab-up")
    assert set(demo) - set(lab_up) == {"format", "log_file", "timeout"}
    assert {name: demo[name] for name in lab_up} == lab_up
    assert "write_inventory" in lab_up and "inventory" not in lab_up


@pytest.mark.slow
def test_lab_up_no_longer_takes_i(tmp_path):
    proc = cli("lab-up", "-i", str(tmp_path / "inventory.yaml"))
    assert proc.returncode == 2
    assert one_line(proc) == "error: lab-up: No idea what '-i' is! (`--help lab-up` lists its " \
                             "options)"
    assert not (tmp_path / "inventory.yaml").exists()


@pytest.mark.slow
@pytest.mark.parametrize("name", ["deploy-code", "command"])
def test_help_shows_n_as_noop_and_no_other_one_letter_option(name):
    proc = cli("--help", name)
    assert proc.returncode == 0, proc.stderr
    flags = [line.split()[0] for line in proc.stdout.splitlines()
             if line.startswith("  -") and not line.startswith("  --")]
    assert flags == ["-f", "-i", "-n,", "-t"], proc.stdout
    assert "-n, --noop" in proc.stdout


@pytest.mark.slow
@pytest.mark.serial("main's infrastructure lock, /var/lib/puppetops/run.lock: main "
                    "is an sshd host of this machine here")
@reliability(fault="-n on deploy-code (before: --incremental, a real deploy)",
             outcome="a noop run: the log's plan_start has incremental false, run_end noop true")
def test_deploy_code_n_is_a_noop_run_never_incremental(project):
    inventory, folder = project
    log = folder / "run.jsonl"
    proc = cli("deploy-code", "-n", "-i", inventory, "--log-file", str(log), "-f", "json",
               cwd=folder)
    events = [json.loads(line) for line in log.read_text().splitlines()]
    start = next(e for e in events if e["event"] == "plan_start")
    assert start["plan"] == "deploy_code" and start["params"]["incremental"] is False
    assert json.loads(proc.stdout)["noop"] is True
    assert events[-1]["event"] == "run_end" and events[-1]["noop"] is True


@pytest.mark.slow
@pytest.mark.parametrize("program", PROGRAMS)
def test_n_on_a_command_changes_nothing(project, program):
    inventory, folder = project
    marker = folder / "RAN"
    proc = PROGRAMS[program]("command", f"touch {marker}", "-t", "host1", "-n", "-i", inventory,
                             "-f", "json")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["noop"] is True and not marker.exists()


# -- --dry ----------------------------------------------------------------------------------

@pytest.mark.slow
@reliability(fault="Invoke's --dry given to a command that changes hosts (before: it deployed "
                   "for real)",
             outcome="exit 2 with one line pointing to --noop; nothing run")
@pytest.mark.parametrize("program", PROGRAMS)
@pytest.mark.parametrize("where", ["after", "before"])
def test_dry_is_refused_and_runs_nothing(project, program, where):
    inventory, folder = project
    marker = folder / "RAN"
    args = ["command", f"touch {marker}", "-t", "host1", "-i", inventory]
    args = [*args, "--dry"] if where == "after" else ["--dry", *args]
    proc = PROGRAMS[program](*args)
    assert proc.returncode == 2
    assert "--noop" in one_line(proc) and not marker.exists()
    if where == "after":
        proc = PROGRAMS[program]("deploy-code", "--dry", "-i", inventory)
        assert proc.returncode == 2 and "--noop" in one_line(proc)


@pytest.mark.slow
@pytest.mark.parametrize("program", PROGRAMS)
@pytest.mark.parametrize("args", [("command", "--help"), ("upload", "-h"), ("plan", "--help"),
                                  ("command", "-t", "host1", "--help")])
def test_help_where_an_argument_was_expected_is_the_commands_help(project, program, args):
    inventory, folder = project
    proc = PROGRAMS[program](*args, "-i", inventory, cwd=folder)
    assert proc.returncode == 0, proc.stderr
    assert f" {args[0]} [--options]" in proc.stdout and "--targets" in proc.stdout
    assert not (folder / ".puppetops").exists()


# -- unknown and misplaced options ----------------------------------------------------------

@reliability(fault="an option where a command's positional argument was expected (command "
                   "-x, command --bogus, upload -x)",
             outcome="exit 2 with one line naming the command; nothing sent to any host")
@pytest.mark.parametrize("program", PROGRAMS)
@pytest.mark.parametrize("args, words", [
    (("command", "-x", "-t", "host1"), "expected the command here, got the option -x"),
    (("command", "--bogus", "-t", "host1"), "got the option --bogus"),
    (("upload", "-x", "/tmp/y", "-t", "host1"), "expected the source here"),
])
@pytest.mark.slow
def test_an_option_is_never_taken_for_a_positional_argument(project, program, args, words):
    inventory, folder = project
    proc = PROGRAMS[program](*args, "-i", inventory)
    assert proc.returncode == 2
    assert words in one_line(proc)
    assert not (folder / ".puppetops").exists()  # no run happened


@reliability(fault="an unknown option, or --rerun without its value",
             outcome="exit 2, one line naming the command and the option (puppetops and "
                     "stock invoke alike); nothing run")
@pytest.mark.parametrize("program", PROGRAMS)
@pytest.mark.parametrize("args, words", [
    (("deploy-code", "--bogus"), "'--bogus'"),
    (("command", "touch {marker}", "-t", "host1", "--bogus"), "'--bogus'"),
    (("command", "--rerun", "-t", "host1"), "--rerun needed value"),  # before: ran --rerun
    (("rotate-lb-member", "-b", "2"), "'-b'"),  # an old, auto-assigned letter
])
@pytest.mark.slow
def test_an_unknown_option_is_a_usage_error(project, program, args, words):
    inventory, folder = project
    marker = folder / "RAN"
    args = tuple(a.format(marker=marker) for a in args)
    proc = PROGRAMS[program](*args, "-i", inventory)
    assert proc.returncode == 2
    line = one_line(proc)
    assert line.startswith(f"error: {args[0]}: ") and words in line
    assert not marker.exists() and not (folder / ".puppetops").exists()


@pytest.mark.slow
@reliability(fault="a command name that does not exist",
             outcome="exit 2, one line naming the word (puppetops and stock invoke alike)")
@pytest.mark.parametrize("program", PROGRAMS)
def test_an_unknown_command_is_a_usage_error(project, program):
    inventory, folder = project
    proc = PROGRAMS[program]("deploy-codes", "-i", inventory, cwd=folder)
    assert proc.returncode == 2
    assert one_line(proc) == "error: No idea what 'deploy-codes' is!"
    assert not (folder / ".puppetops").exists()


@pytest.mark.slow
@reliability(fault="deploy-code -p (its old, auto-assigned no-op letter; now Invoke's --pty)",
             outcome="exit 2, one line pointing to --noop; nothing run")
@pytest.mark.parametrize("program", PROGRAMS)
def test_the_old_noop_letter_of_deploy_code_is_refused(project, program):
    inventory, folder = project
    proc = PROGRAMS[program]("deploy-code", "-p", "-i", inventory, cwd=folder)
    assert proc.returncode == 2 and "--noop (-n)" in one_line(proc)
    assert not (folder / ".puppetops").exists()


@pytest.mark.slow
@pytest.mark.parametrize("program", PROGRAMS)
def test_invokes_own_options_after_a_command_name_are_refused(project, program):
    inventory, folder = project
    proc = PROGRAMS[program]("deploy-code", "-d", "-i", inventory, cwd=folder)  # once --drain
    assert proc.returncode == 2
    assert one_line(proc).startswith("error: --debug / -d is an option of Invoke itself")
    assert not (folder / ".puppetops").exists()


@pytest.mark.parametrize("program", PROGRAMS)
@pytest.mark.parametrize("args, line", [
    (("rotate-lb-member", "--batch-size", "x"),
     "error: --batch-size: expected an integer of at least 1, got 'x'"),
    (("rotate-lb-member", "--drain-timeout", "0"),
     "error: --drain-timeout: expected a number of seconds greater than 0, got '0'"),
    (("deploy-code", "--concurrency", "-3"),
     "error: --concurrency: expected an integer of at least 1, got '-3'"),
    (("deploy-code", "--format", "yaml"), "error: --format: expected one of human, json, "
                                          "got 'yaml'"),
    (("plan", "rotate_lb_member", "--param", "batch_size=two"),
     "error: plan rotate_lb_member: batch_size: expected an integer of at least 1, got 'two'"),
    (("upload", "/etc/hostname", "/tmp/puppetops-never-uploaded", "-t", "host1", "--mode", "999"),
     "error: --mode: expected an octal file mode like 0644, got '999'"),
    (("webhook", "--stop-grace", "soon"),
     "error: --stop-grace: expected a whole number of seconds of at least 0, got 'soon'"),
])
@pytest.mark.slow
def test_a_bad_value_is_one_line_naming_the_option(project, program, args, line):
    inventory, folder = project
    proc = PROGRAMS[program](*args, "-i", inventory)
    assert proc.returncode == 2
    assert one_line(proc) == line


@pytest.mark.slow
def test_plan_takes_bare_key_value_words_under_puppetops_and_keeps_an_options_value(project):
    inventory, folder = project
    proc = PROGRAMS["puppetops"]("plan", "rotate_lb_member", "drain_timeout=5",
                                 "batch_size=two", "-i", inventory)
    assert (proc.returncode, one_line(proc)) == (2, "error: plan rotate_lb_member: batch_size: "
                                                    "expected an integer of at least 1, got 'two'")
    # a key=value word an option is waiting for is that option's value, not a plan parameter
    proc = PROGRAMS["puppetops"]("plan", "rotate_lb_member", "--concurrency", "x=1",
                                 "-i", inventory)
    assert (proc.returncode, one_line(proc)) == (2, "error: --concurrency: expected an integer "
                                                    "of at least 1, got 'x=1'")


# -- generated plan commands ------------------------------------------------------------------

@pytest.mark.slow
@pytest.mark.parametrize("program", PROGRAMS)
def test_a_plans_command_has_its_docstring_as_help_and_its_parameters_as_options(program):
    proc = PROGRAMS[program]("--help", "rotate-lb-member")
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "Drain, maintain, health-check and re-add compilers, one batch at a time." in out
    assert "Refuses to take a member out when no other member would be serving" in out
    assert "--batch-size=INT" in out and "members out at the same time" in out
    assert "--drain-timeout=STRING" in out and "default 600.0" in out
    assert "Args:" not in out  # the Args section became the options' help


PLAN = '''
from typing import Literal, Optional

from puppetops.params import Count, TargetSpec
from puppetops import plan


@plan
def paint(run, targets: TargetSpec = "compilers", coats: Count = 1,
          colour: Literal["red", "blue"] = "red", primer: bool = False,
          note: Optional[str] = None):
    """Paint the targets.

    Each coat is one command on each target.

    Args:
        coats: how many coats
        colour: the paint
        primer: a coat of primer first
    """
    for _ in range(coats):
        run.command(f"echo {colour} {primer} {note}", targets)
'''


@pytest.fixture
def painted(project):
    inventory, folder = project
    (folder / "plans").mkdir()
    (folder / "plans" / "paint.py").write_text(textwrap.dedent(PLAN))
    return inventory, folder


@pytest.mark.slow
@pytest.mark.parametrize("program", PROGRAMS)
def test_a_new_plan_module_is_a_command_with_nothing_added_to_the_cli(painted, program):
    inventory, folder = painted
    run = PROGRAMS[program]
    listed = run("--list", cwd=folder)
    assert listed.returncode == 0, listed.stderr
    assert any(line.split()[:3] == ["paint", "Paint", "the"] for line in listed.stdout.splitlines())
    args = ["paint", "--coats", "2", "--colour", "blue", "--primer", "-t", "host2", "-i",
            inventory, "-f", "json"]
    proc = run(*args, cwd=folder)
    assert proc.returncode == 0, proc.stderr
    steps = json.loads(proc.stdout)["steps"]
    assert [r["stdout"] for s in steps for r in s["results"]] == ["blue True None\n"] * 2
    bad = cli("paint", "--colour", "green", "-i", inventory, cwd=folder)
    assert bad.returncode == 2
    assert one_line(bad) == "error: --colour: expected one of red, blue, got 'green'"
    helped = cli("--help", "paint", cwd=folder)
    assert "Each coat is one command on each target." in helped.stdout
    assert "--coats=INT" in helped.stdout and "how many coats" in helped.stdout
    assert "--[no-]primer" not in helped.stdout and "--primer" in helped.stdout


def test_every_plan_describes_every_parameter_of_its_command():
    """A plan's command takes its help from the plan's docstring (``Args:``) or, for the usual
    target parameters, from the shared wording: an option without help is a plan to fix."""
    from puppetops.plan_registry import discover
    undescribed = [f"{name}: {p.name}" for name, info in sorted(discover().items())
                   for p in info.parameters.values() if not p.help]
    assert undescribed == []


@pytest.mark.slow
def test_a_broken_project_plan_is_skipped_with_one_line_and_the_rest_works(painted):
    """A syntax error or a failed import in one of ./plans is the operator's to fix: every
    other command still works, each says so in one line (file:line), and running the broken
    plan by name is a usage error naming it."""
    inventory, folder = painted
    (folder / "plans" / "typo.py").write_text("from puppetops import plan\n\nx = 1 +\n")
    (folder / "plans" / "missing.py").write_text("\nimport no_such_module_here\n")
    listed = cli("plans", cwd=folder)
    assert listed.returncode == 0 and "paint" in listed.stdout, listed.stderr
    assert listed.stderr.splitlines() == [
        "warning: plan skipped: plans/missing.py:2: ModuleNotFoundError: "
        "No module named 'no_such_module_here'",
        "warning: plan skipped: plans/typo.py:3: SyntaxError: invalid syntax (typo.py, line 3)"]
    painting = cli("paint", "-t", "host2", "-i", inventory, cwd=folder)
    assert painting.returncode == 0, painting.stderr
    broken = cli("plan", "typo", "-i", inventory, cwd=folder)
    assert broken.returncode == 2 and "Traceback" not in broken.stderr
    assert broken.stderr.splitlines()[-1] == ("error: plan typo did not load: plans/typo.py:3: "
                                              "SyntaxError: invalid syntax (typo.py, line 3)")


@pytest.mark.slow
def test_a_project_plan_never_replaces_a_builtin_one_nor_hides_behind_a_command(painted):
    """./plans/deploy_code.py would silently have become `deploy-code` (while the webhook kept
    the built-in one); ./plans/command.py silently had no command. Both are said, in one line
    each, and everything else keeps working."""
    inventory, folder = painted
    (folder / "plans" / "deploy_code.py").write_text(
        "from puppetops import plan\n\n\n@plan\ndef deploy_code(run, env: str = 'x'):\n"
        "    \"\"\"Not the built-in one.\"\"\"\n")
    (folder / "plans" / "command.py").write_text(
        "from puppetops import plan\n\n\n@plan\ndef command(run, targets: str = 'host2'):\n"
        "    \"\"\"A plan named like a command.\"\"\"\n    run.command('echo planned', targets)\n")
    listed = cli("plans", cwd=folder)
    assert listed.returncode == 0, listed.stderr
    assert listed.stderr.splitlines() == [
        "warning: plan skipped: plans/deploy_code.py:4: UsageError: a plan named deploy_code "
        "exists already (puppetops.plans.deploy_code): give this one another name",
        f"warning: plan command ({folder / 'plans' / 'command.py'}) has no command of its "
        "own: `command` is a puppetops command; run the plan as `plan command`"]
    helped = cli("--help", "deploy-code", cwd=folder)
    assert "Deploy" in helped.stdout and "Not the built-in one" not in helped.stdout
    planned = cli("plan", "command", "-i", inventory, "-f", "json", cwd=folder)
    assert planned.returncode == 0, planned.stderr
    results = [r for step in json.loads(planned.stdout)["steps"] for r in step["results"]]
    assert [(r["target"], r["stdout"]) for r in results] == [("host2", "planned\n")]


@reliability(fault="Invoke's own options where puppetops's were meant (-f json before the "
                   "command, -T, -e, --hide), --help for no command, words after --",
             outcome="exit 2, one line; nothing run")
@pytest.mark.parametrize("program", PROGRAMS)
@pytest.mark.parametrize("args, words", [
    (("-f", "json", "command", "touch {marker}", "-t", "host1"), "-f"),
    (("-T", "5", "command", "touch {marker}", "-t", "host1"), "-T"),
    (("-e", "command", "touch {marker}", "-t", "host1"), "-e"),
    (("--help", "no-such-command"), "No idea what 'no-such-command' is!"),
    (("command", "touch {marker}", "-t", "host1", "--", "extra"), "nothing after `--`"),
    (("command", "", "-t", "host1"), "expected a shell command to run, got an empty one"),
    (("plan", "paint", "-t", "host1", "--param", "targets=host2"), "targets given twice"),
    (("plan", "paint", "--param", "coats=1", "--param", "coats=2"), "coats given twice"),
])
@pytest.mark.slow
def test_a_misplaced_or_meaningless_word_is_a_usage_error(painted, program, args, words):
    inventory, folder = painted
    marker = folder / "RAN"
    args = tuple(a.format(marker=marker, inventory=inventory) for a in args)
    if "--help" not in args:
        args += ("-i", inventory)
    proc = PROGRAMS[program](*args, cwd=folder)
    if program == "invoke" and args[0] in ("-T", "-e"):  # Invoke's own, before the command:
        assert proc.returncode == 0  # stock invoke keeps them (they change nothing here)
        return
    assert proc.returncode == 2, proc.stderr
    assert words in one_line(proc)
    assert not marker.exists()


def test_the_puppetops_script_lists_only_invokes_options_that_mean_something_to_it():
    proc = cli("--help")
    assert proc.returncode == 0
    core = proc.stdout.split("Core options:")[1].split("Subcommands:")[0]
    listed = sorted(w for line in core.splitlines() for w in line.split()
                    if w.startswith("-") and not w.startswith("--["))
    assert "--config" not in core and "--echo" not in core and "--hide" not in core
    assert "-f" not in listed and "-T" not in listed and "-e" not in listed
    assert "--dry" in core and "refused: puppetops's no-op is --noop (-n)" in core
    assert {"-h", "-V", "-l", "-d", "--list", "--version"} <= {w.split("=")[0].strip(",[]")
                                                              for w in listed}
