"""The ``remove_environment`` plan: one environment whose branch was deleted leaves main and
every compiler — its directory removed and Puppet Server's cache of it flushed.

It is what the webhook runs for a deleted branch. It works with the purge that ``deploy_code
--env all`` does (``StaleEnvironmentsPurged``), narrowed to this one environment, so the two
remove the same way and a removal that failed half-way (a flush refused) is finished by
either. The control repo is asked first: an environment whose branch still exists is never
removed, because a delete event may be an old signed body replayed or may have arrived after
the push that created the branch again. Such a refusal (``BranchExists``) carries the
branch's head, so the caller can deploy the environment instead: the webhook does, so that a
push overtaken by an older delete is not lost.
"""
from __future__ import annotations

from typing import Annotated

from puppetops.errors import UsageError
from puppetops.flow import single
from puppetops.params import Check, TargetSpec
from puppetops.plan_registry import plan
from puppetops.puppet import names, node
from puppetops.run import Run
from puppetops.steps.code.heads import heads_command, read_heads
from puppetops.steps.code.purge import StaleEnvironmentsPurged
from puppetops.steps.facts import gather


class BranchExists(UsageError):
    """The environment's branch is in the control repo: nothing was removed. ``commit``: the
    branch's head."""

    def __init__(self, environment: str, branch: str, commit: str):
        super().__init__(f"environment {environment} not removed: the control repo still has "
                         f"branch {branch} (at {commit[:12]}): a delete event replayed or "
                         "arriving after the branch was pushed again")
        self.commit = commit


def refuse(environment: str, branch: str, heads: dict[str, str]) -> None:
    """``BranchExists`` (or ``UsageError`` for an empty branch list) unless ``environment``
    may be removed given the control repo's ``heads``."""
    if not heads:
        raise UsageError(f"environment {environment} not removed: the control repo lists no "
                         "branches (a broken read, not a repo to mirror)")
    for name in dict.fromkeys((branch, environment)):
        if name in heads:
            raise BranchExists(environment, name, heads[name])


Environment = Annotated[str, Check(names.environment)]  # checked as the command line is read


@plan(main="main")
def remove_environment(run: Run, env: Environment, targets: TargetSpec = "main,compilers",
                       main: TargetSpec = "main") -> None:
    """Remove the environment ``env`` (its branch is gone) from main and every compiler, with
    its Puppet Server cache flushed. Refused — nothing removed anywhere — while the control
    repo still has the branch. Under r10k's source prefix (var r10k_prefix on main) ``env``
    is PREFIX_branch.

    Args:
        env: the environment to remove
        main: the host with the control repo
    """
    environment = names.environment(env)
    ca = single(run, main, "main")
    prefix = node.environment_prefix(ca)
    branch = names.branch_of(environment, prefix)
    servers = run.targets(targets)
    run.each("facts", gather, list(dict.fromkeys([ca, *servers])))
    heads = run.each("control repo branches", read_heads(heads_command(ca)), [ca])[0].value
    refuse(environment, branch, heads)
    run.step(StaleEnvironmentsPurged(names.environments_of(heads, prefix), only=[environment]),
             servers, catch_errors=True)
