"""Run an ad-hoc shell command (``bolt command run``)."""
from __future__ import annotations

from ..errors import StepError
from ..result import OK
from ..step import Outcome, Step, StepContext


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
