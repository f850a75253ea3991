"""Environments whose branch is gone: removed from a server's disk and from its Puppet
Server's cache (r10k's purge level "deployment", made to hold on every server).

r10k purges such environments only when it runs, and deploy_code runs it only for changed
branches; g10k run for one branch purges nothing. So after ``deploy_code --env all`` a
deleted branch's environment would stay servable. With ``environment_timeout = unlimited``
removing its directory is not enough either: Puppet Server keeps serving the environment it
cached until the cache is flushed, so each removed environment is flushed too. A flush that
fails leaves the environment's flush marker behind (written before the removal), and so does
an environment the deployer itself purged after deploy_code had flushed it: the next purge
finds the marker without its environment and flushes again.

Only directories directly under the environmentpath whose names pass r10k's environment rule
are candidates (never a symlink, a dotted name or anything outside); the caller says which
branches exist, and may narrow the candidates to named environments (the webhook removes the
one environment whose branch was deleted, leaving other stale ones to ``deploy_code --env
all``).
"""
from __future__ import annotations

import shlex
from typing import Iterable

from ...puppet import names, node
from ...step import Finding, Step, StepContext
from . import resource_types
from .deploy import FLUSH_MARKERS, flush_command, require_flushed


def _listing_command(environmentpath: str) -> str:
    """``d NAME`` for each real directory in the environmentpath, ``m NAME`` for each flush
    marker whose environment directory is gone."""
    envs = shlex.quote(environmentpath)
    return (f"cd {envs} 2>/dev/null && find . -mindepth 1 -maxdepth 1 -type d -printf 'd %f\\n'; "
            f"cd {FLUSH_MARKERS} 2>/dev/null && for m in *; do [ -f \"$m\" ] && "
            f"[ ! -e {envs}/\"$m\" ] && printf 'm %s\\n' \"$m\"; done; true")


def parse_listing(text: str, branches: frozenset[str],
                  only: frozenset[str] | None = None) -> tuple[list[str], list[str]]:
    """(stale environment directories, environments gone but not yet flushed): valid names
    only, branches never, and with ``only`` none but those."""
    found: dict[str, set[str]] = {"d": set(), "m": set()}
    for line in text.splitlines():
        kind, _, name = line.partition(" ")
        if kind in found and names.ENVIRONMENT.match(name) and name not in branches \
                and (only is None or name in only):
            found[kind].add(name)
    return sorted(found["d"]), sorted(found["m"] - found["d"])


class StaleEnvironmentsPurged(Step):
    """No environment directory whose branch is gone (``branches``: every branch of the
    control repo), and none still cached by Puppet Server — among ``only`` when given. The
    value: the environments purged (or that would be)."""

    name = "purge stale environments"
    timeout = 300.0

    def __init__(self, branches: Iterable[str], only: Iterable[str] | None = None):
        super().__init__()
        self.branches = frozenset(branches)
        self.only = None if only is None else frozenset(only)

    def _state(self, ctx: StepContext) -> tuple[list[str], list[str]]:
        out = ctx.run(_listing_command(node.layout(ctx.target).environmentpath))
        return parse_listing(out.stdout, self.branches, self.only)

    def find(self, ctx: StepContext) -> Finding:
        stale, gone = self._state(ctx)
        return Finding(_describe(stale, gone), (stale, gone), stale + gone)

    def check(self, ctx: StepContext) -> str | None:
        return self.find(ctx).todo

    def apply(self, ctx: StepContext, found: Finding) -> None:
        stale, gone = found.state
        self._purge(ctx, stale)
        for env in stale + gone:
            self._flush(ctx, env)
        self.verify(ctx)

    @staticmethod
    def _purge(ctx: StepContext, stale: list[str]) -> None:
        """Each directory removed, its flush marker first made sure of (so a failed flush is
        found again), its resource-types marker dropped."""
        if not stale:
            return
        envs = shlex.quote(node.layout(ctx.target).environmentpath)
        words = " ".join(stale)  # validated names: plain words
        ctx.run(f"mkdir -p {FLUSH_MARKERS} && for e in {words}; do touch {FLUSH_MARKERS}/$e && "
                f"if [ -d {envs}/$e ] && [ ! -L {envs}/$e ]; then rm -rf -- {envs}/$e; fi && "
                f"rm -f {resource_types.MARKERS}/$e || exit 1; done")

    @staticmethod
    def _flush(ctx: StepContext, environment: str) -> None:
        out = ctx.run(flush_command(ctx, environment), check=False)
        require_flushed(out)
        ctx.run(f"rm -f {FLUSH_MARKERS}/{names.environment(environment)}")


def _describe(stale: list[str], gone: list[str]) -> str | None:
    parts = ([f"purge stale environments {', '.join(stale)}"] if stale else []) + \
        ([f"flush the cache of removed environments {', '.join(gone)}"] if gone else [])
    return "; ".join(parts) or None
