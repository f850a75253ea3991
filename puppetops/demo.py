"""The demo: a lab of real hosts taken through the whole lifecycle, left up to explore.

``invoke demo`` brings a lab up (``puppetops.lab``) and runs, on its inventory: bootstrap_ca,
add_compiler for each compiler in turn (the second joins an LB that already balances the
first), enroll_agent for each agent, a commit to the control repo on main (site.pp manages
/etc/puppetops-motd), deploy_code, an agent run on every agent (the new file arrives through
the LB), rotate_lb_member over all compilers, install_webhook, and last the workflow it
enables: a ``git push`` of a commit from the controller to the control repo on main, whose
post-receive hook has the webhook deploy it on main and every compiler — the demo waits for
that deploy. It stops at the first stage that fails: each one needs the previous.
"""
from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass
from typing import Any, Callable, TextIO

from tabulate import tabulate

from .errors import StepError
from .flow import single
from .lab import LabInfo
from .lab.git_push import Checkout, GitPushError, wait_for_deploy, webhook_url
from .plans.add_compiler import add_compiler
from .plans.bootstrap_ca import bootstrap_ca
from .plans.deploy_code import deploy_code
from .plans.enroll_agent import enroll_agent
from .plans.install_webhook import install_webhook
from .plans.rotate_lb_member import rotate_lb_member
from .result import ResultSet
from .run import Run
from .step import StepContext
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
PUSHED_SITE_PP = SITE_PP.replace("code deployed by puppetops deploy_code",
                                 "code deployed by the puppetops webhook on git push")
DEPLOY_WAIT = 600.0  # seconds: a deploy on main and every compiler takes seconds to a minute


def push_and_deploy(ctx: StepContext) -> dict[str, Any]:
    """From the controller: clone the control repo on main (``ctx.target``), commit a change,
    ``git push`` it, and wait for the deploy the post-receive hook asked the webhook for."""
    main = ctx.target
    with tempfile.TemporaryDirectory(prefix="puppetops-demo-") as folder:
        try:
            checkout = Checkout(main, f"{folder}/control",
                                provision.repo_on_main(main) or provision.DEFAULT_REPO)
            head = checkout.commit({"manifests/site.pp": PUSHED_SITE_PP},
                                   "Deployed on git push, by the webhook")
            said = checkout.push()
            deploy = wait_for_deploy(webhook_url(main), "production", head, DEPLOY_WAIT)
        except GitPushError as exc:
            raise StepError(str(exc)) from None
    if deploy["status"] != "ok":
        raise StepError(f"the webhook's deploy {deploy['id']} of {head[:12]} failed: "
                        f"{deploy['error']}")
    return {"commit": head, "hook": said, "deploy": deploy["id"], "status": deploy["status"],
            "servers": sorted(r["target"] for r in (deploy["result"] or {}).get("servers", []))}


def webhook_deploy(run: Run, main) -> ResultSet:
    """The push stage. The webhook's deploy takes the infrastructure lock on main, which this
    run holds since its first plan: it lets go first, or the deploy would wait for it."""
    run.release_infrastructure()
    return run.each("git push, webhook deploy", push_and_deploy, [main], catch_errors=True)


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
        ("bootstrap_ca", lambda: bootstrap_ca(run, puppetdb=True)),
        *[("add_compiler", lambda t=t: add_compiler(run, targets=t.name))
          for t in run.targets("compilers")],
        *[("enroll_agent", lambda t=t: enroll_agent(run, targets=t.name))
          for t in run.targets("agents")],
        ("commit to the control repo", lambda: run.step(commit, [main])),
        ("deploy_code", lambda: deploy_code(run)),
        ("agent runs", lambda: run.step(AgentRunNow(), "agents", catch_errors=True)),
        ("rotate_lb_member", lambda: rotate_lb_member(run, targets="compilers")),
        ("install_webhook", lambda: install_webhook(run)),
        ("git push → webhook deploy", lambda: webhook_deploy(run, main)),
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
        f"  curl -s http://{main.address}:8088/deploys    # the webhook on main: deploys on git push",
        f"  http://{main.address}:8088/    # in a browser: the fleet's status page",
        f"  invoke lab-down --state-dir {lab.state_dir}    # removes it",
    ])
