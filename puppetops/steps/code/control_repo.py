"""A change to the control repository: files committed to a branch and pushed; and the
repository's post-receive hook, which tells the webhook about every push.

What a developer's ``git push`` does, as a step — for the demo (the commit that deploy_code
then ships) and for tests. It runs on the host holding the bare repo (main, in the lab), in a
scratch clone removed afterwards; unchanged when the branch already has those contents.
"""
from __future__ import annotations

import re
import shlex
from typing import Mapping

from ...basic_steps import FileContent
from ...errors import StepError, UsageError
from ...puppet import names
from ...step import Finding, Step, StepContext
from .r10k import repo_path

_FILE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._/-]*\Z")
GIT = "git -c user.name=puppetops -c user.email=puppetops@localhost"


def file_path(path: str) -> str:
    """A path inside the repository, safe in a shell and unable to leave the clone."""
    if not _FILE.match(path) or ".." in path.split("/"):
        raise UsageError(f"invalid control repo file {path!r}: use a relative path of letters, "
                         "digits, dots, dashes, underscores and slashes")
    return path


class ControlRepoCommit(Step):
    """Branch ``branch`` of the bare repository ``repo`` has ``files`` (path → content); when
    it does not, one commit with ``message`` makes it so. Its value is the branch's head."""

    name = "control repo commit"

    def __init__(self, repo: str, files: Mapping[str, str], message: str,
                 branch: str = "production"):
        super().__init__()
        self.repo, self.branch, self.message = repo_path(repo), names.environment(branch), message
        self.files = {file_path(p): text for p, text in files.items()}

    def _differing(self, ctx: StepContext) -> list[str]:
        git = f"git --git-dir={shlex.quote(self.repo)}"
        return [path for path, text in self.files.items()
                if ctx.run(f"{git} show refs/heads/{self.branch}:{path}", check=False).stdout
                != text]

    def head(self, ctx: StepContext) -> str:
        return ctx.run(f"git --git-dir={shlex.quote(self.repo)} rev-parse "
                       f"refs/heads/{self.branch}").stdout.strip()

    def _todo(self, differing: list[str]) -> str | None:
        return f"commit {', '.join(differing)} to {self.branch}" if differing else None

    def check(self, ctx: StepContext) -> str | None:
        return self._todo(self._differing(ctx))

    def find(self, ctx: StepContext) -> Finding:
        """What to commit (for ``apply``), and the branch head as the value."""
        differing = self._differing(ctx)
        return Finding(self._todo(differing), differing, self.head(ctx))

    def apply(self, ctx: StepContext, found: Finding) -> str:
        """One commit of the differing files, pushed; the value is the new head."""
        work = ctx.run("mktemp -d").stdout.strip()
        w = shlex.quote(work)
        try:
            ctx.run(f"git clone -q -b {self.branch} {shlex.quote(self.repo)} {w}")
            for path in found.state:
                ctx.run(f"mkdir -p \"$(dirname {shlex.quote(f'{work}/{path}')})\"")
                ctx.put(self.files[path], f"{work}/{path}", mode=0o644)
            ctx.run(f"{GIT} -C {w} add -A && {GIT} -C {w} commit -q -m {shlex.quote(self.message)}"
                    f" && git -C {w} push -q origin {self.branch}")
        finally:
            ctx.run(f"rm -rf {w}", check=False)
        self.verify(ctx)
        return self.head(ctx)


HOOK_MARKER = "# managed by puppetops: each pushed branch is posted, signed, to the webhook"


class PostReceiveHook(FileContent):
    """The bare repository ``repo`` runs ``command`` after every push (its ``post-receive``
    hook, fed git's ``OLD NEW REF`` lines). A hook someone else wrote is never replaced."""

    name = "post-receive hook"

    def __init__(self, repo: str, command: str):
        self.repo = repo_path(repo)
        super().__init__(f"{self.repo}/hooks/post-receive",
                         f"#!/bin/sh\n{HOOK_MARKER}\nexec {command}\n", mode=0o755)

    def check(self, ctx: StepContext) -> str | None:
        current = ctx.read(self.path)
        if current is not None and HOOK_MARKER not in current:
            raise StepError(f"{self.path} exists and is not puppetops': merge "
                            f"`{self.content.decode().splitlines()[-1]}` into it by hand")
        return super().check(ctx)
