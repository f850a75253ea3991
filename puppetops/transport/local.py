"""Local transport: runs commands on the controller itself (``localhost``/``local://`` targets)."""
from __future__ import annotations

import getpass
import subprocess
import time

from ..errors import CommandTimeout
from .base import CommandOutput, Connection


class LocalConnection(Connection):
    @property
    def login_user(self) -> str:
        return getpass.getuser()

    def _exec(self, command: str, stdin: bytes | None, timeout: float) -> CommandOutput:
        start = time.monotonic()
        try:
            proc = subprocess.run(["/bin/sh", "-c", command], input=stdin or b"",
                                  capture_output=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            raise CommandTimeout(f"command timed out after {timeout:g}s") from None
        return CommandOutput(command, proc.returncode, proc.stdout.decode(errors="replace"),
                             proc.stderr.decode(errors="replace"), time.monotonic() - start)

    def close(self) -> None:
        """Nothing to release."""
