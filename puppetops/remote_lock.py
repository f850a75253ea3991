"""The infrastructure lock: held on the main server while a plan changes the infrastructure.

The run lock (``puppetops.lock``) only sees runs started on the same controller. Two
controllers — an operator's laptop and a CI runner, or two operators — would still rotate or
deploy at once. The one place every run of an infrastructure goes through is its main server
(the CA, the control repo), so the lock that must hold for all of them lives there: an
``flock`` on ``REMOTE_LOCK_FILE`` on main, taken by plans declared with ``@plan(main=...)``.

How it is held: ``flock -n`` on main runs a ``cat`` that reads the stdin of a command on an
SSH connection of its own (``ConnectionPool.dedicated``: no retry or reconnect of the run's
shared connection can cut it). The lock lasts exactly as long as that connection: the run
ends it by closing the command's stdin, and if the controller dies — even by SIGKILL — the
kernel closes its socket, sshd closes the command's stdin, ``cat`` ends and ``flock`` lets go.
(A network that silently vanishes keeps it until sshd's ClientAlive checks give up.)
A run whose lock connection ends before the run does takes the lock again before its next
step, or — when another run has it by then — stops there, saying so (``Run``).
The holder writes who it is into the lock file; a refused run reads it back for its message.
"""
from __future__ import annotations

import json
import shlex
from typing import Any

from .errors import LockHeld, PuppetopsError
from .lock import describe_holder, holder_info, read_holder
from .target import Target
from .transport.base import Connection, Session
from .transport.pool import ConnectionPool

REMOTE_LOCK_FILE = "/var/lib/puppetops/run.lock"
HELD = "locked"  # the command's first line once it holds the lock
REFUSED = 75     # flock's exit code when another run holds it (-E)
ANSWER_TIMEOUT = 30.0


def lock_command(holder: dict[str, Any], path: str = REMOTE_LOCK_FILE) -> str:
    """The shell command that takes the lock on main and holds it until its stdin closes.

    Held: prints ``HELD`` and waits. Refused: prints the holder's JSON, exits ``REFUSED``.
    """
    folder, lock = shlex.quote(path.rsplit("/", 1)[0] or "/"), shlex.quote(path)
    hold = shlex.quote(f"printf '%s\\n' \"$1\" > {lock} && echo {HELD} && exec cat >/dev/null")
    return (f"mkdir -p {folder} && flock -n -E {REFUSED} {lock} sh -c {hold} sh "
            f"{shlex.quote(json.dumps(holder))} || {{ rc=$?; [ $rc -eq {REFUSED} ] && "
            f"cat {lock}; exit $rc; }}")


class MainLock:
    """The infrastructure lock on one main server, for one run (``acquire`` → ``release``)."""

    def __init__(self, pool: ConnectionPool, main: Target, about: dict[str, Any],
                 path: str = REMOTE_LOCK_FILE):
        self.pool, self.main, self.about = pool, main, about  # about: the plan, the run id
        self.path = path
        self._connection: Connection | None = None
        self._session: Session | None = None

    def acquire(self) -> None:
        """Take the lock or raise: ``LockHeld`` (with the holder) when another run has it,
        ``PuppetopsError`` when it cannot be taken at all (a run never goes on unlocked)."""
        connection = self.pool.dedicated(self.main)
        try:
            session = connection.start(lock_command(holder_info(**self.about), self.path))
            if session.first_line(ANSWER_TIMEOUT) == HELD:
                self._connection, self._session = connection, session
                return
            done = session.end(ANSWER_TIMEOUT)
        except PuppetopsError as exc:
            connection.close()
            raise PuppetopsError(f"{self.main.name}: cannot take the infrastructure lock "
                                 f"({self.path}): {exc}") from None
        connection.close()
        if done.exit_code == REFUSED:
            holder = read_holder(done.stdout)
            raise LockHeld(f"the infrastructure of main server {self.main.name} is locked by "
                           f"another puppetops run: {describe_holder(holder)}; nothing was "
                           "done, try again later",
                           holder=holder, resource=f"{self.main.name}:{self.path}")
        reason = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
        raise PuppetopsError(f"{self.main.name}: cannot take the infrastructure lock "
                             f"({self.path}): exit {done.exit_code}: {reason[0]}")

    @property
    def held(self) -> bool:
        """Still held: the command holding it still runs on its connection. Checked before
        each step: a connection that dropped has let the lock go."""
        return self._session is not None and self._session.alive()

    def release(self) -> None:
        session, connection, self._session, self._connection = \
            self._session, self._connection, None, None
        try:
            if session is not None:
                session.end(ANSWER_TIMEOUT)
        except PuppetopsError:
            pass  # the connection's end releases the lock all the same
        finally:
            if connection is not None:
                connection.close()
