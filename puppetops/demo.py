"""The demo: a lab of real hosts taken through the whole lifecycle, left up to explore.

``invoke demo`` brings a lab up (``puppetops.lab``) and runs, on its inventory: bootstrap_ca,
add_compiler for each compiler in turn (the second joins an LB that already balances the
first), enroll_agent for each agent, a commit to the control repo on main (site.pp manages
/etc/puppetops-motd), deploy_code, an agent run on every agent (the new file arrives through
the LB), and rotate_lb_member over all compilers. It stops at the first stage that fails:
each one needs the previous.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable, TextIO

from tabulate import tabulate

from .flow import single
from .lab import LabInfo
from .plans.add_compiler import add_compiler
from .plans.bootstrap_ca import bootstrap_ca
from .plans.deploy_code import deploy_code
from .plans.enroll_agent import enroll_agent
from .plans.rotate_lb_member import rotate_lb_member
from .result import ResultSet
from .run import Run
from .steps.code import provision
from .steps.code.control_repo import ControlRepoCommit
from .steps.puppet_agent import AgentRun

MOTD = "/etc/puppetops-motd"
SITE_PP = f"""node default {{
  notify {{ "compiled by ${{server_facts['servername']}}": }}
  file {{ '{MOTD}':
    content => "This node is managed by Puppet, code deployed by puppetops deploy_code.\\n",
  }}
}}
"""


class AgentRunNow(AgentRun):
    """One agent run now, even after a successful one: new code has just been deployed."""

    def check(self, ctx) -> str:
        return "run the agent"

    def verify(self, ctx) -> None:
        """``change`` already failed unless the run exited 0 or 2."""


@dataclass
class Stage:
    """One stage of the demo and what it returned."""

    name: str
    results: ResultSet
    duration: float

    @property
    def ok(self) -> bool:
        return self.results.ok


def stages(run: Run) -> list[tuple[str, Callable[[], ResultSet]]]:
    """The lifecycle, in order, as (name, thunk) pairs."""
    main = single(run, "main", "demo")
    commit = ControlRepoCommit(provision.repo_on_main(main) or provision.DEFAULT_REPO,
                               {"manifests/site.pp": SITE_PP}, f"Manage {MOTD}")
    return [
        ("bootstrap_ca", lambda: bootstrap_ca(run)),
        *[("add_compiler", lambda t=t: add_compiler(run, targets=t.name))
          for t in run.targets("compilers")],
        *[("enroll_agent", lambda t=t: enroll_agent(run, targets=t.name))
          for t in run.targets("agents")],
        ("commit to the control repo", lambda: run.step(commit, [main])),
        ("deploy_code", lambda: deploy_code(run)),
        ("agent runs", lambda: run.step(AgentRunNow(), "agents", catch_errors=True)),
        ("rotate_lb_member", lambda: rotate_lb_member(run, targets="compilers")),
    ]


def lifecycle(run: Run, out: TextIO | None = None) -> list[Stage]:
    """Run every stage until one fails; with ``out``, print each stage's table as it ends."""
    done = []
    for name, work in stages(run):
        start = time.monotonic()
        stage = Stage(name, work(), time.monotonic() - start)
        done.append(stage)
        if out:
            print(f"\n{name}: {'ok' if stage.ok else 'FAILED'} in {stage.duration:.0f}s", file=out)
            print(stage.results.table(), file=out, flush=True)
        if not stage.ok:
            break
    return done


def overview(done: list[Stage], lab: LabInfo) -> str:
    """The closing text: one row per stage, then how to reach the lab that stays up."""
    rows = [(s.name, "ok" if s.ok else "FAILED", f"{s.duration:.0f}s",
             sum(r.changed for r in s.results), len(s.results.error_set)) for s in done]
    main = lab.host("main")
    return "\n".join([
        "", tabulate(rows, headers=("stage", "status", "time", "changed", "failed")), "",
        f"The lab stays up: {len(lab.hosts)} hosts on {lab.bridge} ({lab.topology.subnet}), "
        f"inventory {lab.inventory}",
        f"  ssh -F /dev/null -i {lab.private_key} -o UserKnownHostsFile={lab.known_hosts} "
        f"root@{main.address}",
        f"  invoke lab-down --state-dir {lab.state_dir}    # removes it",
    ])
