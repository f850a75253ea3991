"""Hostile names and parameters (property-based): environment names, certnames, control-repo
paths and plan parameters drawn from shell metacharacters, quotes, newlines, ``..``, unicode
and 10,000-character strings are refused (UsageError, exit 2, before any host is contacted) or
pass through unchanged as one word. The CLI cases run the real `puppetops` process against an
inventory whose hosts refuse connections, so "refused before anything runs" is exit 2 and
not the exit 1 of an unreachable host; a canary file proves no payload ran."""
from __future__ import annotations

import re
import typing

import pytest
from hypothesis import given
from hypothesis import strategies as st

from puppetops.errors import UsageError
from puppetops.plan_registry import discover
from puppetops.plans.deploy_code import environment_list
from puppetops.puppet import names
from puppetops.steps.code.control_repo import file_path
from puppetops.steps.code.r10k import repo_path
from puppetops.steps.lb.pool import Member

from helpers import cli
from hostile import Canary, examples, hostile

CANARY = Canary()
ANY_TEXT = st.one_of(st.text(), hostile(CANARY))
PURE = examples(200, fixtures=False)
CLI = examples(10, process_each=True)
REFUSED = "refused (UsageError) or passed through unchanged as one safe word"


@pytest.fixture(autouse=True)
def no_canary():
    yield
    CANARY.assert_absent()


def refused_or(check, value):
    """``check(value)``'s result, or None when it refused with a UsageError."""
    try:
        return check(value)
    except UsageError as exc:
        assert str(exc) and "\n" not in str(exc).split(":")[0]
        return None


@pytest.mark.reliability(fault="hostile environment names (metacharacters, quotes, newlines, "
                               "`..`, unicode, 10,000 chars)", outcome=REFUSED)
@PURE
@given(ANY_TEXT)
def test_environment_names(name):
    accepted = refused_or(names.environment, name)
    assert accepted is None or (accepted == name and re.fullmatch(r"[A-Za-z0-9_]+", name))


@pytest.mark.reliability(fault="hostile environment lists (env=a,b with hostile items)",
                         outcome=REFUSED)
@PURE
@given(st.lists(ANY_TEXT, max_size=4).map(",".join))
def test_environment_lists(spec):
    accepted = refused_or(environment_list, spec)
    if accepted is not None:
        assert all(re.fullmatch(r"[A-Za-z0-9_]+", e) for e in accepted)
        assert set(accepted) <= {item.strip() for item in spec.split(",")}  # blanks trimmed


@pytest.mark.reliability(fault="hostile certnames and LB member addresses", outcome=REFUSED)
@PURE
@given(ANY_TEXT)
def test_certnames(name):
    accepted = refused_or(names.certname, name)
    assert accepted is None or (accepted == name and len(name) <= 253
                                and re.fullmatch(r"[a-z0-9.-]+", name))
    member = refused_or(lambda n: Member("compiler1.example.com", n), name)
    assert member is None or member.address == accepted


@pytest.mark.reliability(fault="hostile control-repo paths and file names", outcome=REFUSED)
@PURE
@given(ANY_TEXT)
def test_control_repo_paths(path):
    for check in (repo_path, file_path):
        accepted = refused_or(check, path)
        assert accepted is None or (accepted == path and ".." not in path.split("/")
                                    and re.fullmatch(r"[A-Za-z0-9._/-]+", path))


PLANS = discover()


@pytest.mark.slow
@pytest.mark.reliability(fault="hostile plan parameters (key=value from the command line)",
                         outcome="refused with exit 2, or handed to the plan unchanged "
                                 "(one word, never split or evaluated)")
@PURE
@given(st.sampled_from(sorted(PLANS)), st.data())
def test_plan_parameters(name, data):
    info = PLANS[name]
    hints = typing.get_type_hints(info.fn)
    raw = {key: data.draw(ANY_TEXT, label=key) for key in info.parameters}
    coerced = refused_or(info.coerce, raw)
    if coerced is None:
        return
    for key, value in coerced.items():
        hint = hints.get(key, str)
        if isinstance(value, str):
            assert value == raw[key]
        elif isinstance(value, list):
            assert value == [v for v in raw[key].split(",") if v]
        else:
            assert isinstance(value, (bool, int, float)), (key, hint, value)


# --------------------------------------------------------------------------- the real CLI
@pytest.fixture(scope="module")
def closed_inventory(tmp_path_factory):
    """Every group the plans use, on addresses where nothing listens (a contacted host would
    fail with exit 1 'unreachable', never exit 2)."""
    path = tmp_path_factory.mktemp("hostile") / "inventory.yaml"
    path.write_text("config: {ssh: {connect-timeout: 2, attempts: 1}}\n"
                    "vars: {lb_name: lb.example.com}\n"
                    "groups:\n"
                    "  - {name: main, targets: [{name: main.example.com, uri: '127.0.0.1:9'}]}\n"
                    "  - {name: compilers, targets: [{name: compiler1.example.com, uri: '127.0.0.1:9'}]}\n"
                    "  - {name: loadbalancers, targets: [{name: lb.example.com, uri: '127.0.0.1:9'}]}\n"
                    "  - {name: agents, targets: [{name: agent1.example.com, uri: '127.0.0.1:9'}]}\n")
    return path


def assert_refused(proc, *fragments):
    assert proc.returncode == 2, (proc.returncode, proc.stdout[-500:], proc.stderr[-2000:])
    assert "Traceback" not in proc.stderr + proc.stdout
    assert proc.stdout == ""  # no table, no JSON: nothing ran
    for fragment in fragments:
        assert fragment in proc.stderr, proc.stderr[-2000:]


NO_NUL = hostile(CANARY, nul=False)


@pytest.mark.reliability(fault="hostile environment names through the CLI (deploy-code --env)",
                         outcome="exit 2 with 'invalid environment name', no host contacted")
@pytest.mark.slow
@CLI
@given(NO_NUL)
def test_cli_refuses_hostile_environments(closed_inventory, env):
    proc = cli("deploy-code", "--env", env, "-i", str(closed_inventory))
    if "," in env:  # the list is split first: an empty or `all` item has its own message
        assert_refused(proc)
    else:
        assert_refused(proc, "invalid environment name")


@pytest.mark.slow
@pytest.mark.reliability(fault="hostile environment names through `plan deploy_code env=...`",
                         outcome="exit 2 before the infrastructure lock: main is not contacted")
@pytest.mark.parametrize("env", ["$(touch /tmp/pwn)", "a;b", "../x", "prod\nuction"])
def test_plan_refuses_bad_parameters_before_taking_mains_lock(closed_inventory, tmp_path, env):
    # main listens nowhere: contacting it (the infrastructure lock) would exit 1, not 2
    (tmp_path / "known_hosts").write_text("")
    inventory = tmp_path / "inventory.yaml"
    inventory.write_text(closed_inventory.read_text().replace(
        "config: {ssh: {", f"config: {{ssh: {{known-hosts-file: {tmp_path}/known_hosts, "))
    assert_refused(cli("plan", "deploy_code", f"env={env}", "-i", str(inventory)),
                   "invalid environment name")


@pytest.mark.slow
@pytest.mark.reliability(fault="hostile certnames to purge (purge-agent --certnames)",
                         outcome="exit 2 with 'invalid certname' before the infrastructure "
                                 "lock: no host contacted, nothing revoked")
@pytest.mark.parametrize("certname", ["--all", "*", "agent2;touch /tmp/pwn", "Agent2", "a b"])
def test_purge_agent_refuses_bad_certnames_before_taking_mains_lock(closed_inventory, certname):
    assert_refused(cli("purge-agent", "--certnames", certname, "-i", str(closed_inventory)),
                   "invalid certname")


@pytest.mark.reliability(fault="hostile target specs (--targets) and maintenance actions",
                         outcome="exit 2 naming the unknown target, group or action; no host "
                                 "contacted")
@pytest.mark.slow
@CLI
@given(NO_NUL, st.booleans())
def test_cli_refuses_hostile_targets_and_actions(closed_inventory, spec, as_action):
    if as_action:
        proc = cli("rotate-lb-member", "--action", spec, "-i", str(closed_inventory))
        assert_refused(proc, "maintenance action")
    else:
        proc = cli("command", "true", "--targets", spec, "-i", str(closed_inventory))
        assert_refused(proc)
