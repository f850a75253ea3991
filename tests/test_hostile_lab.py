"""Hostile input against the lab's real hosts (property-based, a few dozen examples).

File paths, contents, lines and run-as users carrying a canary payload are quoted into the
commands every lab host runs (as root, in its own /tmp); environment names and every plan
parameter given on the command line are refused before any host is contacted — each lab
host's sshd log shows no new login. Afterwards the canary is absent on the controller and,
checked with the OpenSSH client rather than puppetops, on every lab host.
"""
from __future__ import annotations

import shlex
import subprocess
import typing
from pathlib import Path

import pytest
import yaml
from hypothesis import assume, given
from hypothesis import strategies as st

from puppetops import Inventory, Run
from puppetops.plan_registry import discover
from puppetops.steps import RunCommand

from helpers import cli
from hostile import (Canary, assert_refused_everywhere, examples, file_name, hostile,
                     run_file_steps)

pytestmark = pytest.mark.lab

CANARY = Canary()
LAB = examples(20)
LAB_CLI = examples(10, process_each=True)
SSHD_LOG = "upper/var/log/puppetops-lab-sshd.log"


def assert_no_canary_anywhere(lab) -> None:
    CANARY.assert_absent()
    # every host at once: one SSH login after another costs seconds per hypothesis example
    checks = {host.short: subprocess.Popen(
        lab.ssh_command(host.short, f"test ! -e {shlex.quote(CANARY.path)}"),
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True) for host in lab.hosts}
    try:
        for short, check in checks.items():
            _, err = check.communicate(timeout=120)
            assert check.returncode == 0, f"injected command ran on {short}: {err}"
    finally:
        for check in checks.values():
            if check.poll() is None:
                check.kill()


def logins(lab) -> dict[str, int]:
    """Logins so far per lab host, from its sshd's own log (in the host's overlay upper dir)."""
    counts = {}
    for host in lab.hosts:
        log = Path(lab.state_dir) / host.short / SSHD_LOG
        counts[host.short] = log.read_text(errors="replace").count("Accepted ") if log.exists() else 0
    return counts


@pytest.fixture(scope="module")
def lab_run(lab):
    # unlocked: the CLI runs of this module must not find the hosts locked by this one
    with Run(Inventory.load(lab.inventory), backoff=0.2, lock=False) as run:
        yield run
    assert_no_canary_anywhere(lab)


@pytest.mark.reliability(fault="hostile file paths, contents and lines on the lab's hosts",
                         outcome="each host has the file at exactly that name with exactly that "
                                 "content (a re-run changes nothing), or fails with the reason; "
                                 "no payload runs on any host")
@LAB
@given(hostile(CANARY).map(file_name), hostile(CANARY), hostile(CANARY, long=False))
def test_file_steps_on_every_host(lab, lab_run, name, content, line):
    assume(name not in (".", "..") and "\n" not in line and line.strip())
    lab_run.each("folder", lambda ctx: ctx.run("mkdir -p /tmp/hostile"), "all")
    run_file_steps(lab_run, "all", "/tmp/hostile", name, content, line)
    CANARY.assert_absent()


@pytest.mark.reliability(fault="hostile run-as users on the lab's hosts",
                         outcome="the command fails on each host with sudo's reason; no payload "
                                 "runs")
@LAB
@given(hostile(CANARY))
def test_run_as_on_every_host(lab, lab_run, user):
    results = lab_run.step(RunCommand("true", run_as=user), "all", catch_errors=True)
    assert_refused_everywhere(results)
    CANARY.assert_absent()


PLANS = discover()
TEXT_PARAMETERS = sorted((name, key) for name, info in PLANS.items()
                         for key in info.parameters
                         if typing.get_type_hints(info.fn).get(key, str) is not bool)


def assert_no_login(before: dict[str, int], after: dict[str, int]) -> None:
    """No host saw a login: a plan checks its parameters before its first step, and the
    infrastructure lock on main is only taken at that first step."""
    contacted = {host for host in after if after[host] != before[host]}
    assert not contacted, (before, after)


@pytest.mark.reliability(fault="hostile plan parameters on the command line against the lab "
                               "(environment names, target specs, actions, numbers)",
                         outcome="exit 2 naming the parameter's problem; no host sees a login; "
                                 "no payload runs")
@LAB_CLI
@given(st.sampled_from(TEXT_PARAMETERS), hostile(CANARY))
def test_plan_parameters_refused_before_anything_runs(lab, case, value):
    plan, key = case
    before = logins(lab)
    proc = cli("plan", plan, f"{key}={value}", "-i", str(lab.inventory))
    assert "Traceback" not in proc.stderr + proc.stdout
    assert proc.returncode == 2, (plan, key, proc.returncode, proc.stderr[-2000:])
    assert_no_login(before, logins(lab))
    assert_no_canary_anywhere(lab)


@pytest.mark.reliability(fault="hostile certname / lb_name vars in the lab's inventory",
                         outcome="exit 2 naming the invalid certname; no host sees a login; "
                                 "no payload runs")
@LAB_CLI
@given(hostile(CANARY), st.sampled_from([("enroll_agent", "agent1", "certname"),
                                         ("add_compiler", "compiler1", "certname"),
                                         ("add_compiler", "compiler1", "lb_name"),
                                         ("bootstrap_ca", "main", "certname")]))
def test_certname_vars_refused_before_anything_runs(lab, tmp_path_factory, name, case):
    plan, host, var = case
    data = yaml.safe_load(Path(lab.inventory).read_text())
    data["groups"].append({"name": "hostile", "vars": {var: name},
                           "targets": [lab.host(host).fqdn]})
    inventory = tmp_path_factory.mktemp("certname") / "inventory.yaml"
    inventory.write_text(yaml.safe_dump(data, sort_keys=False))
    before = logins(lab)
    proc = cli("plan", plan, f"targets={lab.host(host).fqdn}", "-i", str(inventory))
    assert "Traceback" not in proc.stderr + proc.stdout
    assert proc.returncode == 2 and "invalid certname" in proc.stderr, proc.stderr[-2000:]
    assert_no_login(before, logins(lab))
    assert_no_canary_anywhere(lab)
