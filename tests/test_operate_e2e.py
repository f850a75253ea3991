"""End to end on the stood-up lab: deploy_code and rotate_lb_member, checked on the hosts.

Tests run in file order and each leaves the infrastructure healthy (both compilers UP, the
same code everywhere) for the next, restoring whatever it broke on purpose.
"""
from __future__ import annotations

import json
import time
import uuid

import pytest

from puppetops.plans.deploy_code import deploy_code
from puppetops.plans.rotate_lb_member import rotate_lb_member
from puppetops.steps.code.control_repo import ControlRepoCommit
from puppetops.steps.code.provision import DEFAULT_REPO

pytestmark = pytest.mark.lab

SERVERS = ("main", "compiler1", "compiler2")
COMPILERS = ("compiler1", "compiler2")
AGENTS = ("agent1", "agent2")
MOTD = "/etc/puppetops-motd"
RECORD = "/etc/puppet/code/environments/production/.r10k-deploy.json"
ACCESS_LOG = "/var/log/puppetserver/puppetserver-access.log"
PIDFILE = "/run/puppetserver/puppetserver.pid"
SOCKET = "/run/haproxy/admin.sock"


def fqdn(infra, short: str) -> str:
    return infra.lab.host(short).fqdn


def site_pp(token: str) -> str:
    """site.pp whose managed file names the commit (its message is the token)."""
    return ('node default {\n'
            '  notify { "compiled by ${server_facts[\'servername\']}": }\n'
            f'  file {{ "{MOTD}": content => "deployed by deploy_code: commit {token}\\n" }}\n'
            '}\n')


def push(infra, token: str) -> str:
    """A commit changing site.pp on the lab's control repo; returns its sha."""
    with infra.run() as run:
        result = run.step(ControlRepoCommit(DEFAULT_REPO, {"manifests/site.pp": site_pp(token)},
                                            f"commit {token}"), "main")[0]
    assert result.status == "changed", result.message
    return result.value


def flushes(infra, short: str) -> int:
    """Environment-cache DELETEs the server answered 204, as its access log tells."""
    return int(infra.ssh(short, f"grep -c 'DELETE /puppet-admin-api/v1/environment-cache"
                                f"?environment=production HTTP/1.1\" 204' {ACCESS_LOG} || true"))


def deployed_commit(infra, short: str) -> str:
    return json.loads(infra.ssh(short, f"cat {RECORD}"))["signature"]


def lb_states(infra) -> dict[str, tuple[int, int]]:
    """HAProxy's view: member → (srv_op_state, srv_admin_state)."""
    text = infra.ssh("lb", f"echo 'show servers state puppet_compilers' | socat stdio "
                           f"unix-connect:{SOCKET}")
    rows = [line.split() for line in text.splitlines()[2:] if line.strip()]
    return {r[3]: (int(r[5]), int(r[6])) for r in rows}


def wait_for(what, predicate, timeout: float = 120.0):
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(1)


def agent_run(infra, short: str) -> int:
    out = infra.ssh(short, "puppet agent -t --color false >/tmp/e2e-run.log 2>&1; echo $?")
    return int(out.strip())


# -- deploy_code -------------------------------------------------------------------------------

def test_deploy_code_ships_a_commit_everywhere_flushes_and_agents_get_it(infrastructure):
    infra = infrastructure
    token = f"e2e-{uuid.uuid4().hex[:8]}"
    head = push(infra, token)
    before = {s: flushes(infra, s) for s in SERVERS}
    with infra.run() as run:
        results = deploy_code(run)
    assert results.ok, results.details()
    for short in SERVERS:
        assert results.find(fqdn(infra, short)).value == {"production": head}
        assert deployed_commit(infra, short) == head
        assert flushes(infra, short) == before[short] + 1
    assert agent_run(infra, "agent1") in (0, 2)
    assert infra.ssh("agent1", f"cat {MOTD}") == f"deployed by deploy_code: commit {token}\n"

    with infra.run() as run:  # nothing new: nothing deployed, nothing flushed
        again = deploy_code(run)
    assert again.ok and not again.changed, again.details()
    assert {s: flushes(infra, s) for s in SERVERS} == {s: before[s] + 1 for s in SERVERS}


def test_a_compiler_that_fails_its_deploy_is_drained_and_nothing_is_flushed(infrastructure):
    """compiler2's r10k cache dir is replaced by a file (root ignores permissions, so
    chmod would not stop it): its deploy fails for real, the others succeed."""
    infra = infrastructure
    c1, c2 = fqdn(infra, "compiler1"), fqdn(infra, "compiler2")
    old = deployed_commit(infra, "compiler2")
    infra.ssh("compiler2", "mv /var/cache/r10k /var/cache/r10k.e2e && touch /var/cache/r10k")
    try:
        head = push(infra, f"e2e-{uuid.uuid4().hex[:8]}")
        before = {s: flushes(infra, s) for s in SERVERS}
        with infra.run() as run:
            results = deploy_code(run)
        assert not results.ok
        row = results.find(c2)
        assert row.status == "failed" and row.value == {"production": old}
        assert f"production at {old[:12]}" in row.message and "deploy failed" in row.message
        assert results.find(c1).value == results.find(fqdn(infra, "main")).value == \
            {"production": head}
        assert {s: flushes(infra, s) for s in SERVERS} == before
        states = lb_states(infra)
        assert states[c2][1] & 0x08 and states[c1] == (2, 0)  # compiler2 drained, compiler1 in
    finally:
        infra.ssh("compiler2", "rm -f /var/cache/r10k && mv /var/cache/r10k.e2e /var/cache/r10k")
    with infra.run() as run:  # fixed: the next deploy catches up, flushes and puts it back
        restored = deploy_code(run)
    assert restored.ok, restored.details()
    assert {s: flushes(infra, s) for s in SERVERS} == {s: before[s] + 1 for s in SERVERS}
    assert lb_states(infra) == {c1: (2, 0), c2: (2, 0)}


# -- rotate_lb_member ------------------------------------------------------------------------

def test_rotating_while_the_other_compiler_is_down_is_refused(infrastructure):
    """compiler2's JVM is frozen (SIGSTOP): HAProxy's checks mark it DOWN. Taking compiler1
    out now would leave no compiler serving, so nothing may change."""
    infra = infrastructure
    c1, c2 = fqdn(infra, "compiler1"), fqdn(infra, "compiler2")
    infra.ssh("compiler2", f"kill -STOP $(cat {PIDFILE})")
    try:
        wait_for("compiler2 DOWN", lambda: lb_states(infra)[c2][0] != 2)
        with infra.run() as run:
            results = rotate_lb_member(run, targets="compiler1")
        assert not results.ok
        assert "refusing to take out" in results.find(fqdn(infra, "lb")).message
        assert lb_states(infra)[c1] == (2, 0)
    finally:
        infra.ssh("compiler2", f"kill -CONT $(cat {PIDFILE})")
    wait_for("compiler2 UP", lambda: lb_states(infra)[c2] == (2, 0))


LOOP = ("rm -f /tmp/e2e-loop.*; setsid sh -c 'echo $$ > /tmp/e2e-loop.pid; "
        "while [ ! -e /tmp/e2e-loop.stop ]; do puppet agent -t --color false "
        ">>/tmp/e2e-loop.log 2>&1; echo $? >> /tmp/e2e-loop.codes; done' "
        ">/dev/null 2>&1 </dev/null &")


def test_rotating_every_compiler_fails_no_agent_run(infrastructure):
    infra = infrastructure
    pids = {c: infra.ssh(c, f"cat {PIDFILE}").strip() for c in COMPILERS}
    for agent in AGENTS:
        infra.ssh(agent, LOOP)
    try:
        with infra.run() as run:
            results = rotate_lb_member(run, targets="compilers")
    finally:
        for agent in AGENTS:  # let the run in progress finish, then read every exit code
            infra.ssh(agent, "touch /tmp/e2e-loop.stop; while kill -0 $(cat /tmp/e2e-loop.pid) "
                             "2>/dev/null; do sleep 1; done")
    assert results.ok, results.details()
    for agent in AGENTS:
        codes = [int(c) for c in infra.ssh(agent, "cat /tmp/e2e-loop.codes").split()]
        print(agent, f"{len(codes)} runs, exit codes {sorted(set(codes))}")
        assert len(codes) >= 3  # the loop ran all along
        assert set(codes) <= {0, 2}, infra.ssh(agent, "grep -E 'Error|Warning' /tmp/e2e-loop.log")
    for compiler in COMPILERS:
        assert infra.ssh(compiler, f"cat {PIDFILE}").strip() != pids[compiler]  # a new JVM
    assert set(lb_states(infra).values()) == {(2, 0)}
