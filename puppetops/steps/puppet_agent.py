"""The Puppet agent on any node (servers included): puppet.conf settings and agent runs."""
from __future__ import annotations

import shlex
from typing import Callable, Collection

import yaml

from ..errors import StepError
from ..puppet import conf, node
from ..step import Step, StepContext
from ..target import Target
from .files import FileEdit

SUCCESS_CODES = (0, 2)  # --detailed-exitcodes: 0 nothing changed, 2 changes applied
LOCK_WAIT = 300  # seconds to wait for a run already in progress (peadm waits 5 minutes)


class PuppetConf(FileEdit):
    """puppet.conf (at the target's layout's path) has ``settings(target)``: section → key →
    value, None removing a key. Other settings and comments stay."""

    name = "puppet.conf"

    def __init__(self, settings: Callable[[Target], conf.Settings]):
        super().__init__()
        self.settings = settings

    def path(self, ctx: StepContext) -> str:
        return node.layout(ctx.target).puppet_conf

    def edit(self, ctx: StepContext, current: str | None) -> str:
        return conf.puppet_conf(current, self.settings(ctx.target))


def run_succeeded(summary: str | None) -> bool:
    """Whether a last_run_summary.yaml records an applied catalog with no failure."""
    try:
        data = yaml.safe_load(summary or "") or {}
    except yaml.YAMLError:
        return False
    if not isinstance(data, dict) or not (data.get("version") or {}).get("config"):
        return False
    failed = (data.get("resources") or {}).get("failed", 0) or 0
    failures = (data.get("events") or {}).get("failure", 0) or 0
    return failed == 0 and failures == 0


class AgentRun(Step):
    """The agent has applied a catalog successfully. Unchanged once its last run succeeded;
    otherwise one foreground run (after any run in progress finishes), exit 0 or 2 = ok."""

    name = "agent run"
    timeout = 900.0
    waits_for = "the agent run to finish"

    def __init__(self, again: Collection[str] = ()):
        """``again``: targets that must run even after a good run (e.g. a new certificate)."""
        super().__init__()
        self.again = frozenset(again)

    def check(self, ctx: StepContext) -> str | None:
        if ctx.target.name in self.again:
            return "run the agent with its new certificate"
        return None if self._succeeded(ctx) else "run the agent"

    def verify(self, ctx: StepContext) -> None:
        if not self._succeeded(ctx):
            raise StepError("the agent's last run summary does not show a successful run")

    @staticmethod
    def _succeeded(ctx: StepContext) -> bool:
        return run_succeeded(ctx.read(node.layout(ctx.target).last_run_summary))

    def change(self, ctx: StepContext) -> None:
        layout = node.layout(ctx.target)
        lock = shlex.quote(f"{layout.agent_vardir}/state/agent_catalog_run.lock")
        ctx.run(f"for i in $(seq {LOCK_WAIT}); do [ -e {lock} ] || break; sleep 1; done")
        out = ctx.run(f"{shlex.quote(layout.puppet)} agent --onetime --no-daemonize --verbose "
                      "--no-usecacheonfailure --no-splay --no-use_cached_catalog "
                      "--detailed-exitcodes --color false", check=False)
        if out.exit_code not in SUCCESS_CODES:
            errors = [line for line in (out.stdout + out.stderr).splitlines() if "Error" in line]
            raise StepError(f"puppet agent run exited {out.exit_code}: "
                            f"{(errors or ['no error message'])[-1].strip()}",
                            exit_code=out.exit_code, stdout=out.stdout, stderr=out.stderr)
