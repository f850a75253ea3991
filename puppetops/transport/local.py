"""Local transport: runs commands on the controller itself (``localhost``/``local://`` targets)."""
from __future__ import annotations

import getpass
import os
import select
import subprocess
import time

from .. import secrets
from ..errors import CommandTimeout
from .base import CommandOutput, Connection, Session


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

    def _start(self, command: str, stdin: bytes | None) -> Session:
        proc = subprocess.Popen(["/bin/sh", "-c", command], stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        if stdin:
            proc.stdin.write(stdin)
            proc.stdin.flush()
        return _ProcessSession(proc, command)

    def close(self) -> None:
        """Nothing to release."""


class _ProcessSession(Session):
    """A local command kept running; its stdin is a pipe that closes when we exit."""

    def __init__(self, proc: subprocess.Popen, command: str):
        self.proc, self.command, self.started = proc, command, time.monotonic()
        self.out = b""

    def first_line(self, timeout: float) -> str:
        deadline, fd = time.monotonic() + timeout, self.proc.stdout.fileno()
        while b"\n" not in self.out:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not select.select([fd], [], [], remaining)[0]:
                raise CommandTimeout(f"no answer within {timeout:g}s")
            data = os.read(fd, 4096)
            if not data:
                return ""
            self.out += data
        return self.out.split(b"\n", 1)[0].decode(errors="replace")

    def alive(self) -> bool:
        return self.proc.poll() is None

    def end(self, timeout: float) -> CommandOutput:
        try:
            out, err = self.proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.communicate()
            raise CommandTimeout(f"command did not end within {timeout:g}s") from None
        return CommandOutput(self.command, self.proc.returncode,
                             secrets.mask((self.out + out).decode(errors="replace")),
                             secrets.mask(err.decode(errors="replace")),
                             time.monotonic() - self.started)
