"""The ``puppetops`` console script: the same commands as ``invoke`` in this repository."""
from __future__ import annotations

import signal
import sys

from invoke import Program
from invoke.exceptions import Exit, ParseError

from .. import __version__
from ..errors import EXIT_USAGE
from . import namespace
from .pipes import settle_stdout


class PuppetopsProgram(Program):
    """Exits 2 (usage error) on a command-line parse error, like every other usage error,
    with one line naming the command: an unknown option is a mistake to fix, never something
    to run. (Stock ``invoke`` exits 1 for these: its parser's errors are its own.)"""

    def parse_core(self, argv):  # noqa: D102 - Invoke hook
        try:
            super().parse_core(argv)
        except ParseError as exc:
            raise Exit(_usage(exc), code=EXIT_USAGE) from None

    def parse_tasks(self):  # noqa: D102 - Invoke hook
        try:
            super().parse_tasks()
        except ParseError as exc:
            raise Exit(_usage(exc), code=EXIT_USAGE) from None
        # Invoke reads its own options after a command name too (`deploy-code -p` was --pty,
        # and `-d`/`-e` --debug/--echo): there they are a mistake for an option of ours
        for arg in self.core_via_tasks.args.values():
            if arg.got_value and arg.name not in ("help", "dry", "pty"):  # the last two: the
                # task's own refusal says what to use instead (parsing.refuse_local_run_flags)
                names = " / ".join(("-" if len(n) == 1 else "--") + n for n in arg.names)
                raise Exit(f"error: {names} is an option of Invoke itself, not of a puppetops "
                           "command (`--help COMMAND` lists a command's options)",
                           code=EXIT_USAGE)

    def execute(self):  # noqa: D102 - Invoke hook
        # A Ctrl-C before a run has started (reading the inventory, connecting) or outside
        # one: Invoke's own answer is a silent exit 1. A run answers signals itself (it stops
        # at a step boundary and reports).
        try:
            super().execute()
        except KeyboardInterrupt:
            raise Exit("interrupted by SIGINT", code=128 + signal.SIGINT) from None


def _usage(exc: ParseError) -> str:
    """``error: deploy-code: No idea what '--bogus' is! (--help deploy-code lists ...)``."""
    command = getattr(exc.context, "name", None)
    if not command:
        return f"error: {exc}"
    return f"error: {command}: {exc} (`--help {command}` lists its options)"


def main() -> None:
    """The console script. Output into a closed pipe (``puppetops --help | head``) ends it
    quietly: the reader has gone, there is no one to show a traceback to."""
    try:
        PuppetopsProgram(namespace=namespace, version=__version__, name="puppetops",
                         binary="puppetops").run()
    except BrokenPipeError:
        settle_stdout()
        sys.exit(1)
    finally:
        settle_stdout()
