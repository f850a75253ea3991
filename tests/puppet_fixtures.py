"""pytest plugin: the Puppet infrastructure stood up on the default lab, once per session.

``infrastructure`` brings the lab up through the ``lab`` fixture (puppetops.lab.fixtures;
its inventory gives Puppet Server a 512 MB heap: three JVMs share a 2-core box),
then runs bootstrap_ca → add_compiler on both compilers at once → enroll_agent on both
agents at once, and hands the tests the plans' results, their durations, and a way to run
more plans or commands against the same hosts. Registered in tests/conftest.py.
"""
from __future__ import annotations

import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import pytest

from puppetops import Inventory, Run
from puppetops.lab import LabInfo
from puppetops.output import LogFileOutput, Output
from puppetops.plans.add_compiler import add_compiler
from puppetops.plans.bootstrap_ca import bootstrap_ca
from puppetops.plans.enroll_agent import enroll_agent
from puppetops.result import ResultSet


@dataclass
class Infrastructure:
    lab: LabInfo
    log: Path  # JSON lines of every plan, step and target result of the session
    results: dict[str, ResultSet] = field(default_factory=dict)  # plan → per-target summary
    durations: dict[str, float] = field(default_factory=dict)  # plan → seconds

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
    stand_up = (("bootstrap_ca", bootstrap_ca, {}),
                ("add_compiler", add_compiler, {"targets": "compilers"}),
                ("enroll_agent", enroll_agent, {"targets": "agents"}))
    with infra.run() as run:
        for name, plan, params in stand_up:
            start = time.monotonic()
            infra.results[name] = plan(run, **params)
            infra.durations[name] = time.monotonic() - start
            if not infra.results[name].ok:
                pytest.fail(f"{name} failed (log: {infra.log}):\n{infra.results[name].details()}")
    yield infra
