"""The steps a ``Run`` offers directly: run a command (``bolt command run``) and upload a
file (``bolt file upload``), plus ``FileContent``, which an upload is.

They live in the core, not in ``steps/``, because ``Run.command`` and ``Run.upload`` build
them and the core imports nothing above it (docs/architecture.md).
"""
from __future__ import annotations

import hashlib
import shlex
from pathlib import Path

from .errors import StepError
from .result import OK
from .step import Outcome, Step, StepContext


class RunCommand(Step):
    """Runs ``command``; ok when it exits 0, failed otherwise. Not a state check: always runs,
    except in noop mode, where it reports what it would run."""

    name = "command"

    def __init__(self, command: str, *, run_as: str | None = None, timeout: float | None = None,
                 retry_on_failure: bool = False):
        super().__init__()
        self.command, self.run_as = command, run_as
        self.timeout, self.retry_on_failure = timeout, retry_on_failure

    def execute(self, ctx: StepContext) -> Outcome:
        if ctx.noop:
            return Outcome("skipped", f"noop: would run `{self.command}`")
        out = ctx.run(self.command, check=False, run_as=self.run_as)
        if not out.ok:
            detail = (out.stderr.strip() or out.stdout.strip()).splitlines()[-1:] or [""]
            raise StepError(f"exit {out.exit_code}: {detail[0]}", exit_code=out.exit_code,
                            stdout=out.stdout, stderr=out.stderr)
        return Outcome(OK, exit_code=0, stdout=out.stdout, stderr=out.stderr)


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class FileContent(Step):
    """Ensures ``path`` has exactly ``content`` (and ``mode``/``owner`` when given).

    Checks by SHA-256 so unchanged files are never rewritten; writes atomically.
    """

    name = "file"

    def __init__(self, path: str, content: bytes | str, *, mode: int | None = None,
                 owner: str | None = None):
        super().__init__()
        self.path = path
        self.content = content.encode() if isinstance(content, str) else content
        self.mode, self.owner = mode, owner

    def _state(self, ctx: StepContext) -> tuple[str | None, str | None, str | None]:
        q = shlex.quote(self.path)
        # the content on stdin: for a name with a backslash or newline, `sha256sum FILE` escapes
        # the name and puts a backslash before the digest, which then never matches
        out = ctx.run(f"[ -f {q} ] && sha256sum < {q} | cut -d' ' -f1 && stat -c '%a %U:%G' {q}"
                      " || true")
        lines = out.stdout.split()
        if not lines:
            return None, None, None
        return lines[0], lines[1], lines[2]

    def check(self, ctx: StepContext) -> str | None:
        digest, mode, owner = self._state(ctx)
        if digest is None:
            return f"create {self.path}"
        wrong = []
        if digest != _digest(self.content):
            wrong.append("content")
        if self.mode is not None and int(mode, 8) != self.mode:
            wrong.append(f"mode {mode}→{self.mode:o}")
        if self.owner and owner not in (self.owner, f"{self.owner}:{self.owner}") \
                and owner.split(":")[0] != self.owner.split(":")[0]:
            wrong.append(f"owner {owner}→{self.owner}")
        return f"update {self.path} ({', '.join(wrong)})" if wrong else None

    def change(self, ctx: StepContext) -> None:
        q = shlex.quote(self.path)
        ctx.run(f"mkdir -p {shlex.quote(str(Path(self.path).parent))}")
        ctx.put(self.content, self.path, mode=self.mode if self.mode is not None else 0o644)
        if self.owner:
            ctx.run(f"chown {shlex.quote(self.owner)} {q}")


class Upload(FileContent):
    """Uploads a local file (``bolt file upload``); unchanged when the remote copy matches."""

    name = "upload"

    def __init__(self, source: str, destination: str, *, mode: int | None = None):
        data = Path(source).read_bytes()
        super().__init__(destination, data, mode=mode)
        self.source = source
