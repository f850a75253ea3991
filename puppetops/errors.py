"""Exception hierarchy.

Every error a user can cause carries a message that names what was wrong and where, and maps
to a process exit code, so the CLI never shows a traceback for bad input.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from .result import ResultSet

EXIT_OK = 0
EXIT_FAILED = 1          # some target failed
EXIT_USAGE = 2           # bad command line, inventory or parameter
EXIT_LOCKED = 75         # another run holds the lock (EX_TEMPFAIL: try again later)


def signal_exit_code(signum: int) -> int:
    """The exit code of a process stopped by signal ``signum``: 128 + its number, as a shell
    reports a job killed by it (130 for SIGINT, 143 for SIGTERM), so cron, systemd and CI can
    tell "stopped on request" from "a target failed" (1)."""
    return 128 + signum


class PuppetopsError(Exception):
    """Base class; ``exit_code`` is what the CLI exits with."""

    exit_code = EXIT_FAILED


class UsageError(PuppetopsError):
    """Bad input from the user: arguments, parameters, names."""

    exit_code = EXIT_USAGE


class NeedsAttention(PuppetopsError):
    """The fleet's status found something broken or about to be (exit 1, so cron or a
    monitoring check can alert); the message names each culprit."""

    def __init__(self, culprits: list[str]):
        self.culprits = culprits
        super().__init__("needs attention: " + "; ".join(culprits))


class InventoryError(UsageError):
    """An invalid inventory file; the message names the file, line and key."""

    def __init__(self, message: str, path: str | None = None, line: int | None = None):
        self.path, self.line, self.reason = path, line, message
        where = path or "<inventory>"
        if line is not None:
            where += f":{line}"
        super().__init__(f"{where}: {message}")


class TargetNotFound(UsageError):
    """A target selection names something the inventory lacks."""


class ConfigError(UsageError):
    """A selected target's transport settings cannot work: a key or known_hosts file that is
    missing or unreadable, an unset password variable, a transport puppetops lacks.

    The operator's configuration, not a host's fault: it is found before anything runs (see
    ``ConnectionPool.check``) so it never shows up as every target "unreachable" halfway
    through a run. ``reason`` is the message without the targets it concerns.
    """

    def __init__(self, reason: str):
        self.reason = reason
        super().__init__(reason)


class LockHeld(PuppetopsError):
    """Another puppetops run holds the lock of a host this run would touch (``puppetops.lock``)
    or the infrastructure lock on its main server (``puppetops.remote_lock``). ``holder`` is
    what that run wrote about itself (pid, user, host, command, since), when it could be read."""

    exit_code = EXIT_LOCKED

    def __init__(self, message: str, *, holder: dict[str, Any] | None = None,
                 resource: str = ""):
        super().__init__(message)
        self.holder, self.resource = holder, resource


class TransportError(PuppetopsError):
    """A target could not be reached or talked to."""


class TransientTransportError(TransportError):
    """A fault worth retrying: connection refused/reset/timed out, SSH banner or negotiation."""


class HostKeyError(TransportError):
    """The target's host key is unknown or has changed. Never retried."""


class AuthenticationError(TransportError):
    """The target refused our credentials. Never retried."""


class CommandTimeout(TransportError):
    """A remote command outlived its timeout."""


class StepError(PuppetopsError):
    """A step failed on a target (its check, change or verify)."""

    def __init__(self, message: str, *, exit_code: int | None = None, stdout: str = "", stderr: str = ""):
        super().__init__(message)
        self.command_exit_code, self.stdout, self.stderr = exit_code, stdout, stderr


class Interrupted(PuppetopsError):
    """The run was asked to stop (SIGINT, SIGTERM, or ``Run.interrupt``): nothing new starts.

    Exits ``signal_exit_code(signum)``.
    """

    def __init__(self, message: str, signum: int):
        super().__init__(message)
        self.signum = signum
        self.exit_code = signal_exit_code(signum)


class PlanFailure(PuppetopsError):
    """A step failed on some targets and the plan's policy says stop; carries the results."""

    def __init__(self, message: str, results: "ResultSet"):
        super().__init__(message)
        self.results = results
