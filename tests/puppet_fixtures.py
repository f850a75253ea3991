"""pytest plugin: the Puppet infrastructure of the session, stood up by the main job itself.

``infrastructure`` brings the session lab up through the ``lab`` fixture (puppetops.lab.fixtures;
its inventory gives Puppet Server a 512 MB heap: three JVMs share a 2-core box), then runs
``puppetops demo --format json`` on that lab, as an operator would: bootstrap_ca, add_compiler
for each compiler in turn, enroll_agent for each agent, a commit, deploy_code, agent runs and
rotate_lb_member (the demo's bring-up finds the lab up and leaves it as it is). The tests get
the demo's JSON document, each plan's duration and a way to run more plans or commands against
the same hosts. One stand-up serves the demo's own test and every end-to-end test: each Puppet
Server start costs a minute or more here. Registered in tests/conftest.py.
"""
from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import pytest

from puppetops import Inventory, Run
from puppetops.lab import LabInfo
from puppetops.lab.fixtures import test_lab
from puppetops.output import LogFileOutput, Output
from puppetops.steps.code.provision import DEFAULT_REPO

from helpers import cli

@dataclass
class Infrastructure:
    lab: LabInfo
    log: Path  # JSON lines of every plan, step and target result of the session
    demo: dict[str, Any] = field(default_factory=dict)  # the demo's JSON document
    durations: dict[str, float] = field(default_factory=dict)  # plan → seconds, all its runs

    def run(self, **kwargs) -> Run:
        """A Run on the lab's inventory that logs to ``log`` (use it as a context manager)."""
        return Run(Inventory.load(self.lab.inventory),
                   output=Output(LogFileOutput(str(self.log))), **kwargs)

    def ssh(self, host: str, command: str, check: bool = True) -> str:
        """``command``'s stdout on lab host ``host`` (short name), over the lab's SSH."""
        done = subprocess.run(self.lab.ssh_command(host, command), capture_output=True, text=True,
                              timeout=300)
        if check and done.returncode:
            raise AssertionError(f"{host}: `{command}` exited {done.returncode}: {done.stderr}")
        return done.stdout


@pytest.fixture(scope="session")
def infrastructure(lab: LabInfo, tmp_path_factory: pytest.TempPathFactory
                   ) -> Iterator[Infrastructure]:
    infra = Infrastructure(lab, tmp_path_factory.mktemp("infrastructure") / "plans.jsonl")
    where = test_lab("session")
    proc = cli("demo", "--format", "json", "--state-dir", where["state_dir"], "--subnet",
               where["subnet"], "--bridge", where["bridge"], "--log-file", str(infra.log),
               timeout=2400)
    try:
        infra.demo = json.loads(proc.stdout)
    except ValueError:
        pytest.fail(f"the demo printed no JSON document (exit {proc.returncode}):\n"
                    f"{proc.stderr[-4000:]}")
    for plan in infra.demo.get("plans", []):
        infra.durations[plan["name"]] = infra.durations.get(plan["name"], 0) + plan["duration"]
    if proc.returncode != 0:
        failed = [r for s in infra.demo.get("steps", []) for r in s["results"]
                  if r["status"] in ("failed", "unreachable")]
        pytest.fail(f"the demo failed (exit {proc.returncode}, log: {infra.log}):\n"
                    + "\n".join(f"{r['target']} — {r['step']}: {r['message']}" for r in failed)
                    + f"\n{proc.stderr[-2000:]}")
    # The tests push commits and deploy them themselves, counting flushes and deploys: no
    # webhook deploys behind their backs (the webhook's own lab test installs the hook again).
    infra.ssh("main", f"rm -f {DEFAULT_REPO}/hooks/post-receive")
    yield infra
