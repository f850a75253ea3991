"""Steps: small idempotent units of work, run by the executor on one target at a time.

A step declares what it checks and what it changes (pyinfra's operations/facts split):
``check`` looks at the target and returns ``None`` when it is already in the desired state,
or a sentence saying what would change; ``change`` makes it so; ``verify`` confirms it (by
default: ``check`` again must say nothing is left to do). In noop mode only ``check`` runs.

A step whose check reads something worth keeping overrides ``find`` instead: it returns a
``Finding`` that carries what was read into ``apply`` (the change and its verification) and
the step's result value, so nothing is read twice and no step looks at noop itself.
"""
from __future__ import annotations

import base64
import re
import shlex
import time
from dataclasses import dataclass
from typing import Any, Callable

from .errors import StepError
from .heartbeat import Watch
from .interrupt import Interruption
from .result import CHANGED, OK, UNCHANGED
from .target import Target
from .transport.base import CommandOutput, Connection


@dataclass
class Outcome:
    """What a step reports for one target; the executor adds timing and attempts."""

    status: str
    message: str = ""
    value: Any = None
    exit_code: int | None = None
    stdout: str = ""
    stderr: str = ""


@dataclass(frozen=True)
class Finding:
    """What a check found on one target: ``todo`` says what a change would do (None: the
    target is as wanted); ``state`` is what was read, for ``Step.apply``; ``value`` the
    step's result value when nothing changes, or when ``apply`` returns None; ``after`` the
    value the change will give as far as the check can foresee it, which is the value in
    noop (None: ``value``) — so a plan reads what a real run would lead to from a noop
    run's results, without looking at noop itself."""

    todo: str | None
    state: Any = None
    value: Any = None
    after: Any = None


class StepContext:
    """What a step sees of one target: its data, its connection, and the run's noop flag."""

    def __init__(self, target: Target, conn: Connection, *, noop: bool = False,
                 timeout: float | None = None, deadline: float | None = None,
                 interruption: Interruption | None = None, watch: Watch | None = None):
        self.target, self.conn, self.noop = target, conn, noop
        self.timeout, self.deadline = timeout, deadline
        self.interruption = interruption
        self._watch = watch

    @property
    def vars(self) -> dict[str, Any]:
        return self.target.vars

    @property
    def facts(self) -> dict[str, Any]:
        return self.target.facts

    def waiting_for(self, what: str) -> None:
        """Say what the step waits for now ("puppetserver to answer /status/v1/simple"):
        the heartbeats of a long step show it."""
        if self._watch is not None:
            self._watch.waiting_for = what

    def _limit(self, timeout: float | None) -> float | None:
        limit = timeout if timeout is not None else self.timeout
        if self.deadline is not None:
            left = max(0.1, self.deadline - time.monotonic())
            limit = left if limit is None else min(limit, left)
        return limit

    def sleep(self, seconds: float) -> None:
        """Wait between two polls of a step that waits for something (sessions to end, a
        server to be up); raises ``Interrupted`` at once when the run is asked to stop."""
        if self.interruption is None:
            time.sleep(seconds)
        else:
            self.interruption.sleep(seconds)

    def run(self, command: str, *, check: bool = True, stdin: bytes | str | None = None,
            timeout: float | None = None, run_as: str | None = None) -> CommandOutput:
        """Run a shell command; with ``check`` a non-zero exit raises ``StepError``."""
        out = self.conn.run(command, stdin=stdin, timeout=self._limit(timeout), run_as=run_as)
        if check and not out.ok:
            detail = (out.stderr.strip() or out.stdout.strip()).splitlines()[-1:] or [""]
            raise StepError(f"`{_short(command)}` exited {out.exit_code}: {detail[0]}",
                            exit_code=out.exit_code, stdout=out.stdout, stderr=out.stderr)
        return out

    def test(self, command: str, *, timeout: float | None = None) -> bool:
        """True when ``command`` exits 0 (for checks)."""
        return self.run(command, check=False, timeout=timeout).ok

    def read(self, path: str, *, secret: bool = False) -> str | None:
        """A remote file's content, or None when it does not exist. Command output has every
        registered secret masked; a file holding one is read ``secret``: base64-encoded on
        the way, so it arrives as it is (register what is in it before showing anything)."""
        q = shlex.quote(path)
        show = f"base64 -w0 {q}" if secret else f"cat {q}"
        out = self.run(f"if [ -e {q} ]; then {show}; else exit 3; fi", check=False)
        if out.exit_code == 3:
            return None
        if not out.ok:
            raise StepError(f"cannot read {path}: {out.stderr.strip()}", exit_code=out.exit_code)
        return base64.b64decode(out.stdout.strip()).decode() if secret else out.stdout

    def put(self, content: bytes | str, path: str, *, mode: int | None = None) -> None:
        out = self.conn.put(content, path, mode=mode, timeout=self._limit(None))
        if not out.ok:
            raise StepError(f"cannot write {path}: {out.stderr.strip()}", exit_code=out.exit_code)


class Step:
    """Base class. Subclasses set ``name`` and implement ``check`` and ``change``.

    ``retry_on_failure``: a failed check/change may be retried like a transient fault (only
    for steps whose failures are known to be transient, e.g. waiting for a service).
    ``timeout``: the limit for each remote call of this step (default: the target's
    ``command-timeout``).
    ``waits_for``: what a long run of this step waits for, shown in its heartbeats
    (``StepContext.waiting_for`` changes it while the step runs).
    """

    name: str = ""
    retry_on_failure: bool = False
    timeout: float | None = None
    waits_for: str = ""

    def __init__(self) -> None:
        if not self.name:
            self.name = _snake(type(self).__name__)

    def check(self, ctx: StepContext) -> str | None:
        raise NotImplementedError

    def change(self, ctx: StepContext) -> Any:
        raise NotImplementedError

    def verify(self, ctx: StepContext) -> None:
        left = self.check(ctx)
        if left is not None:
            raise StepError(f"still not in the desired state after the change: {left}")

    def find(self, ctx: StepContext) -> Finding:
        """What ``check`` found, as a ``Finding``."""
        return Finding(self.check(ctx))

    def apply(self, ctx: StepContext, found: Finding) -> Any:
        """Make the change ``found`` calls for and verify it; the value (None: the finding's)."""
        value = self.change(ctx)
        self.verify(ctx)
        return value

    def execute(self, ctx: StepContext) -> Outcome:
        """find → (not in noop) apply: the only place that looks at noop for a step."""
        found = self.find(ctx)
        if found.todo is None:
            return Outcome(UNCHANGED, value=found.value)
        if ctx.noop:
            return Outcome(CHANGED, f"would {found.todo}",
                           value=found.value if found.after is None else found.after)
        value = self.apply(ctx, found)
        return Outcome(CHANGED, found.todo, value=found.value if value is None else value)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name}>"


class Call(Step):
    """A step made from a function ``fn(ctx) -> value`` that reports ``ok`` with that value.

    For per-target logic inside plans (gather a fingerprint, compare versions...). It runs in
    noop mode too, so it only reads: whatever changes something is a ``Step`` (its ``find``
    says what it would do; noop stops there), never a ``Call`` that looks at ``ctx.noop``.
    """

    def __init__(self, name: str, fn: Callable[[StepContext], Any], *,
                 retry_on_failure: bool = False, timeout: float | None = None):
        self.name, self.fn = name, fn
        self.retry_on_failure, self.timeout = retry_on_failure, timeout
        super().__init__()

    def execute(self, ctx: StepContext) -> Outcome:
        value = self.fn(ctx)
        if isinstance(value, Outcome):
            return value
        return Outcome(OK, value=value)


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def _short(command: str, width: int = 60) -> str:
    return command if len(command) <= width else command[: width - 1] + "…"
