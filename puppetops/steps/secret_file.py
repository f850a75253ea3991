"""A secret in a file only its owner can read: given (then uploaded on stdin, compared by
digest) or generated on the host itself (then it never crosses the network at all).

Neither the secret nor its digest is ever in a command line, a result or a log line.
"""
from __future__ import annotations

import hashlib
import shlex

from ..secrets import register
from ..step import Step, StepContext

GENERATE = "umask 077 && openssl rand -hex 32"


class SecretFile(Step):
    """``path`` is a regular file, mode 0600, holding ``secret`` — or, with no secret given,
    any non-empty secret (one is generated on the host when there is none)."""

    name = "secret file"

    def __init__(self, path: str, secret: str | None = None):
        super().__init__()
        self.path = path
        self.secret = register(secret) if secret else None

    def _state(self, ctx: StepContext) -> tuple[str, str, int]:
        """(sha256 of the content with its end-of-line stripped, mode, size), or empties."""
        q = shlex.quote(self.path)
        out = ctx.run(f"[ -f {q} ] && printf '%s' \"$(cat {q})\" | sha256sum | cut -d' ' -f1 && "
                      f"stat -c '%a %s' {q} || true").stdout.split()
        return (out[0], out[1], int(out[2])) if len(out) == 3 else ("", "", 0)

    def check(self, ctx: StepContext) -> str | None:
        digest, mode, size = self._state(ctx)
        if not size:
            return f"{'write' if self.secret else 'generate'} the secret in {self.path}"
        if self.secret and digest != hashlib.sha256(self.secret.encode()).hexdigest():
            return f"replace the secret in {self.path}"
        if mode != "600":
            return f"make {self.path} readable by its owner only (mode {mode}→600)"
        return None

    def change(self, ctx: StepContext) -> None:
        q = shlex.quote(self.path)
        ctx.run(f"install -d -m 700 \"$(dirname {q})\"")
        digest, _, size = self._state(ctx)
        if self.secret and digest != hashlib.sha256(self.secret.encode()).hexdigest():
            ctx.put(self.secret + "\n", self.path, mode=0o600)
        elif not size:
            ctx.run(f"{GENERATE} > {q}.new && mv -f {q}.new {q}")
        ctx.run(f"chmod 600 {q}")
