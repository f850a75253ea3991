"""A file known by its SHA-256: the check compares digests, and the content — possibly large,
possibly fetched on the controller first — is loaded only when it must be uploaded, so a
re-run reads nothing and a noop run fetches nothing."""
from __future__ import annotations

import hashlib
import re
import shlex
from pathlib import Path
from typing import Callable

from ..errors import StepError, UsageError
from ..step import Step, StepContext

_SHA256 = re.compile(r"^[0-9a-f]{64}\Z")


class PinnedFile(Step):
    """``path`` holds the bytes whose SHA-256 is ``sha256`` (mode ``mode``); ``load`` gives
    them, and must give exactly those."""

    name = "pinned file"
    timeout = 300.0

    def __init__(self, path: str, sha256: str, load: Callable[[], bytes], *, mode: int = 0o644):
        super().__init__()
        if not _SHA256.match(sha256):
            raise UsageError(f"pinned file {path}: expected a SHA-256 in hex, got {sha256!r}")
        self.path, self.sha256, self.load, self.mode = path, sha256, load, mode

    def check(self, ctx: StepContext) -> str | None:
        q = shlex.quote(self.path)
        out = ctx.run(f"[ -f {q} ] && sha256sum < {q} | cut -d' ' -f1 && stat -c %a {q} || true")
        found = out.stdout.split()
        if not found:
            return f"upload {self.path} ({self.sha256[:12]})"
        if found[0] != self.sha256:
            return f"update {self.path} to {self.sha256[:12]}"
        if int(found[1], 8) != self.mode:
            return f"set {self.path}'s mode to {self.mode:o}"
        return None

    def change(self, ctx: StepContext) -> None:
        data = self.load()
        if hashlib.sha256(data).hexdigest() != self.sha256:
            raise StepError(f"{self.path}: the local copy is not the pinned one "
                            f"({self.sha256[:12]}): not uploaded")
        ctx.run(f"mkdir -p {shlex.quote(str(Path(self.path).parent))}")
        ctx.put(data, self.path, mode=self.mode)
