"""The control repo's branch heads (branch → commit), read on main: what deploy_code deploys
and what remove_environment checks before it removes anything."""
from __future__ import annotations

import shlex

from ...step import StepContext
from ...target import Target
from . import provision


def branches(ls_remote: str) -> dict[str, str]:
    """branch → commit, from ``git ls-remote --heads`` output."""
    heads = {}
    for line in ls_remote.splitlines():
        commit, _, ref = line.partition("\t")
        if ref.startswith("refs/heads/"):
            heads[ref[len("refs/heads/"):]] = commit.strip()
    return heads


def heads_command(main: Target) -> str:
    """The command listing the control repo's branch heads on main (``git ls-remote --heads``
    output). A repo on main is read in place — the same refs the servers fetch over SSH, without
    an SSH connection from main to itself; an external one with ``git ls-remote``."""
    path = provision.repo_on_main(main)
    if path is None:
        return f"git ls-remote --heads {shlex.quote(provision.remote(main))}"
    return (f"git --git-dir={shlex.quote(path)} for-each-ref "
            f"--format='%(objectname)%09%(refname)' refs/heads")


def read_heads(command: str):
    """A step function: the branch → commit map ``command`` (``heads_command``) prints."""
    def read(ctx: StepContext) -> dict[str, str]:
        return branches(ctx.run(command, timeout=120).stdout)
    return read
