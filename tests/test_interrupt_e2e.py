"""SIGINT, SIGTERM and SIGKILL of the controller in the middle of rotate-lb-member and
deploy-code, on the stood-up lab: the CLI runs as a real process, the signal is sent when the
JSON-lines log shows the chosen step starting, and the LB host is checked afterwards (HAProxy's
admin socket, the out-of-LB records). No compiler may be silently out of load balancing, and
a re-run (or lb-ready) must converge. Each test leaves both compilers UP for the next.
"""
from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
import uuid
from contextlib import contextmanager
from pathlib import Path

import pytest

from helpers import REPO
from puppetops.plans.deploy_code import deploy_code
from puppetops.plans.lb_ready import lb_ready
from puppetops.steps.puppetserver import PuppetserverRunning
from test_operate_e2e import SERVERS, deployed_commit, flushes, fqdn, lb_states, push, wait_for

pytestmark = pytest.mark.lab

RECORDS = "/var/lib/puppetops/lb-out"
BOTH_UP = (2, 0)  # HAProxy: srv_op_state running, srv_admin_state ready


class Cli:
    """One puppetops command started as a process of its own, logging to a JSON-lines file."""

    def __init__(self, infra, tmp_path: Path, *args: str):
        self.log = tmp_path / f"run-{uuid.uuid4().hex[:6]}.jsonl"
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "puppetops", *args, "-i", str(infra.lab.inventory),
             "--log-file", str(self.log), "--format", "json"],
            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def events(self) -> list[dict]:
        if not self.log.exists():
            return []
        whole = self.log.read_text().split("\n")[:-1]  # the last line may be in writing
        return [json.loads(line) for line in whole if line]

    def wait_for_step(self, step: str, timeout: float = 900.0) -> None:
        """Until the log says ``step`` started (read from the log, never guessed by sleeping)."""
        deadline = time.monotonic() + timeout
        while not any(e["event"] == "step_start" and e["step"] == step for e in self.events()):
            if self.proc.poll() is not None:
                raise AssertionError(f"exited {self.proc.returncode} before {step!r}: "
                                     f"{self.proc.communicate()[1]}")
            assert time.monotonic() < deadline, f"{step!r} never started"
            time.sleep(0.1)

    def finish(self, timeout: float = 900.0) -> tuple[int, str, str]:
        try:
            out, err = self.proc.communicate(timeout=timeout)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
        return self.proc.returncode, out, err

    def interrupted(self, signum: int, at: str) -> tuple[dict, str]:
        """Send ``signum`` when step ``at`` starts; the JSON document and stderr once it ended
        with 128 + signum, its log's run_end saying so too."""
        self.wait_for_step(at)
        self.proc.send_signal(signum)
        code, out, err = self.finish()
        name = signal.Signals(signum).name
        assert code == 128 + signum, err
        doc = json.loads(out)
        assert doc["interrupted"] == name and doc["ok"] is False
        end = self.events()[-1]
        assert end["event"] == "run_end" and end["interrupted"] == name
        assert end["run_id"] == doc["run_id"]
        assert f"interrupted by {name}" in err
        return doc, err


def record(infra, member: str) -> dict | None:
    text = infra.ssh("lb", f"cat {RECORDS}/{member}.json 2>/dev/null || true")
    return json.loads(text) if text.strip() else None


def assert_converged(infra) -> None:
    """Both compilers serve on the LB, and no record says one is out."""
    wait_for("both compilers UP", lambda: set(lb_states(infra).values()) == {BOTH_UP})
    assert infra.ssh("lb", f"ls {RECORDS} 2>/dev/null || true").split() == []


def result(doc: dict, step: str, target: str) -> dict:
    return next(r for s in doc["steps"] if s["name"] == step for r in s["results"]
                if r["target"] == target)


@contextmanager
def sessions_through_the_lb(infra, member: str):
    """Two idle TCP sessions from agent1 through the LB (leastconn: one per compiler), so
    draining ``member`` has a session to wait for."""
    infra.ssh("agent1", "rm -f /tmp/e2e-hold.*; for i in 1 2; do setsid bash -c 'echo $$ > "
                        "/tmp/e2e-hold.'$i'; exec 3<>/dev/tcp/" + fqdn(infra, "lb") + "/8140; "
                        "sleep 600' >/dev/null 2>&1 </dev/null & done")
    try:
        wait_for(f"a session on {member}", lambda: _sessions(infra, member) >= 1, timeout=30)
        yield
    finally:
        infra.ssh("agent1", "kill $(cat /tmp/e2e-hold.*) 2>/dev/null; rm -f /tmp/e2e-hold.*")


def _sessions(infra, member: str) -> int:
    text = infra.ssh("lb", "echo 'show stat' | socat stdio unix-connect:/run/haproxy/admin.sock")
    row = next(line.split(",") for line in text.splitlines()
               if line.startswith(f"puppet_compilers,{member},"))
    return int(row[4] or 0)  # scur


def server_pid(infra, short: str) -> str:
    return infra.ssh(short, "cat /run/puppetserver/puppetserver.pid").strip()


def ensure_running(infra, short: str, tries: int = 3) -> None:
    """compiler's Puppet Server running and ready (a killed run may have stopped it); on a
    loaded box a JVM can take longer than one step's 300 s to start."""
    for _ in range(tries):
        with infra.run() as run:
            if run.step(PuppetserverRunning(), short, catch_errors=True)[0].ok:
                return
    raise AssertionError(f"{short}: Puppet Server not ready")


@pytest.fixture(scope="module", autouse=True)
def converged(infrastructure):
    """Start from both compilers running and serving, whatever an earlier session left."""
    for short in ("compiler1", "compiler2"):
        ensure_running(infrastructure, short)
    with infrastructure.run() as run:
        assert lb_ready(run, targets="compilers").ok
    assert_converged(infrastructure)


# -- rotate_lb_member ------------------------------------------------------------------------

@pytest.mark.reliability(fault="SIGINT of the controller while rotate_lb_member takes a "
                               "compiler out (at the drain, while waiting for its sessions, at "
                               "the health gate)",
                         outcome="the healthy compiler is put back in load balancing, its "
                                 "record removed; exit 130, summary, run_end interrupted")
@pytest.mark.parametrize("at", ["LB drain", "LB sessions drained", "puppetserver running"])
def test_sigint_during_a_rotation_puts_the_healthy_compiler_back(infrastructure, tmp_path, at):
    """The maintenance action is the facts plan, not a restart: these cases are about the LB
    window, and a JVM restart costs minutes on a loaded box (the restart has its own tests)."""
    infra = infrastructure
    c1 = fqdn(infra, "compiler1")
    pid = server_pid(infra, "compiler1")
    held = sessions_through_the_lb(infra, c1) if at == "LB sessions drained" else None
    with held or _nothing():
        cli = Cli(infra, tmp_path, "rotate-lb-member", "--targets", "compiler1",
                  "--action", "facts")
        doc, err = cli.interrupted(signal.SIGINT, at)
        if held:  # the wait for the drained sessions was cut short, not waited out
            row = result(doc, "LB sessions drained", fqdn(infra, "lb"))
            assert row["status"] == "failed" and "interrupted by SIGINT" in row["message"]
    assert f"rotate_lb_member: interrupted; {c1} serving in load balancing again" in err
    assert_converged(infra)
    assert server_pid(infra, "compiler1") == pid
    action_ran = any(p["name"] == "facts" for p in doc["plans"])
    assert action_ran == (at == "puppetserver running")  # nothing new started after the signal


@contextmanager
def _nothing():
    yield


@pytest.mark.reliability(fault="SIGTERM of the controller while the compiler's Puppet Server "
                               "restarts",
                         outcome="the compiler stays out (not healthy yet), recorded on the LB "
                                 "with the run id; exit 143; lb-ready puts it back once healthy")
def test_sigterm_during_the_restart_leaves_the_compiler_out_recorded_for_lb_ready(
        infrastructure, tmp_path):
    infra = infrastructure
    c1 = fqdn(infra, "compiler1")
    cli = Cli(infra, tmp_path, "rotate-lb-member", "--targets", "compiler1")
    doc, err = cli.interrupted(signal.SIGTERM, "puppetserver restart")
    assert lb_states(infra)[c1][1] & 0x01  # in maintenance
    left = record(infra, c1)
    assert left["run"] == doc["run_id"] and left["why"]["plan"] == "rotate_lb_member"
    assert left["member"] == c1 and "@" in left["who"]
    assert f"`invoke lb-ready --targets {c1}` puts it back" in err

    ensure_running(infra, "compiler1")
    code, out, err = Cli(infra, tmp_path, "lb-ready", "--targets", "compiler1").finish()
    assert code == 0, err
    assert_converged(infra)
    code, out, _ = Cli(infra, tmp_path, "lb-ready", "--targets", "compiler1").finish()
    assert code == 0 and not any(r["status"] == "changed" for s in json.loads(out)["steps"]
                                 for r in s["results"] if s["name"] == "LB ready")


@pytest.mark.reliability(fault="SIGKILL of the controller during the restart; then a rotation "
                               "of the only other compiler",
                         outcome="the LB record names who/why/when/run; the other rotation is "
                                 "refused saying so and how to fix it; deploy-code warns; "
                                 "lb-ready puts it back")
def test_sigkill_during_the_restart_is_recoverable_from_the_record(infrastructure, tmp_path):
    infra = infrastructure
    c1, c2 = fqdn(infra, "compiler1"), fqdn(infra, "compiler2")
    cli = Cli(infra, tmp_path, "rotate-lb-member", "--targets", "compiler1")
    cli.wait_for_step("puppetserver restart")
    cli.proc.kill()
    assert cli.finish()[0] == -signal.SIGKILL
    assert not any(e["event"] == "run_end" for e in cli.events())
    assert lb_states(infra)[c1][1] & 0x01
    left = record(infra, c1)
    assert left["why"]["plan"] == "rotate_lb_member" and len(left["run"]) == 12
    ensure_running(infra, "compiler1")  # the kill may have cut its restart short

    other = Cli(infra, tmp_path, "rotate-lb-member", "--targets", "compiler2")
    code, out, err = other.finish()
    assert code == 1
    refusal = result(json.loads(out), "LB preflight", fqdn(infra, "lb"))["message"]
    assert f"refusing to take out {c2}: no other member would be serving" in refusal
    assert f"{c1} is maint, taken out by rotate_lb_member in run {left['run']}" in refusal
    assert f"`invoke lb-ready --targets {c1}` puts it back" in refusal
    assert lb_states(infra)[c2] == BOTH_UP

    deploy = Cli(infra, tmp_path, "deploy-code")
    code, out, err = deploy.finish()
    warnings = [e["text"] for e in deploy.events() if e["event"] == "message"
                and e["text"].startswith(f"warning: {c1} is out of load balancing")]
    assert warnings and f"run {left['run']}" in warnings[0] and "lb-ready" in warnings[0], err

    code, out, err = Cli(infra, tmp_path, "lb-ready", "--targets", "compiler1").finish()
    assert code == 0, err
    assert_converged(infra)


# -- deploy_code -----------------------------------------------------------------------------

@pytest.mark.reliability(fault="SIGTERM/SIGINT of the controller during deploy-code's deploy "
                               "or cache flush",
                         outcome="no compiler drained or left out, exit 143/130; the next run "
                                 "deploys what is missing and flushes every server once")
@pytest.mark.parametrize("signum, at", [(signal.SIGTERM, "deploy production"),
                                        (signal.SIGINT, "flush production cache")],
                         ids=["SIGTERM-at-deploy", "SIGINT-at-flush"])
def test_an_interrupted_deploy_leaves_no_member_out_and_a_rerun_converges(
        infrastructure, tmp_path, signum, at):
    infra = infrastructure
    head = push(infra, f"e2e-{uuid.uuid4().hex[:8]}")
    before = {s: flushes(infra, s) for s in SERVERS}
    Cli(infra, tmp_path, "deploy-code").interrupted(signum, at)
    assert_converged(infra)
    with infra.run() as run:
        again = deploy_code(run)
    assert again.ok, again.details()
    assert {s: deployed_commit(infra, s) for s in SERVERS} == {s: head for s in SERVERS}
    assert {s: flushes(infra, s) for s in SERVERS} == {s: before[s] + 1 for s in SERVERS}
    assert_converged(infra)
