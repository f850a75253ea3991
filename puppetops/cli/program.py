"""The ``puppetops`` console script: the same commands as ``invoke`` in this repository."""
from __future__ import annotations

import signal
import sys
from typing import Callable

from invoke import Program
from invoke.exceptions import Exit, ParseError

from .. import __version__
from ..errors import EXIT_USAGE
from . import namespace
from .pipes import settle_stdout


class PuppetopsProgram(Program):
    """Exits 2 (usage error) on a command-line parse error, like every other usage error,
    with one line naming the command: an unknown option is a mistake to fix, never something
    to run."""

    def parse_core(self, argv):  # noqa: D102 - Invoke hook
        try:
            super().parse_core(argv)
        except ParseError as exc:
            raise Exit(_usage(exc), code=EXIT_USAGE) from None

    def parse_tasks(self):  # noqa: D102 - Invoke hook
        _parse_commands_strictly(self, super().parse_tasks)

    def execute(self):  # noqa: D102 - Invoke hook
        _execute_saying_ctrl_c(super().execute)


def _parse_commands_strictly(program: Program, parse_tasks: Callable[[], None]) -> None:
    """Invoke's parse of the command words (``Program.parse_tasks``), with its errors made
    usage errors (exit 2, one line) and Invoke's own options refused after a command name."""
    try:
        parse_tasks()
    except ParseError as exc:
        raise Exit(_usage(exc), code=EXIT_USAGE) from None
    # Invoke reads its own options after a command name too (`deploy-code -p` was --pty,
    # and `-d`/`-e` --debug/--echo): there they are a mistake for an option of ours
    for arg in program.core_via_tasks.args.values():
        if arg.got_value and arg.name not in ("help", "dry", "pty"):  # the last two: the
            # task's own refusal says what to use instead (parsing.refuse_local_run_flags)
            names = " / ".join(("-" if len(n) == 1 else "--") + n for n in arg.names)
            raise Exit(f"error: {names} is an option of Invoke itself, not of a puppetops "
                       "command (`--help COMMAND` lists a command's options)",
                       code=EXIT_USAGE)


def _execute_saying_ctrl_c(execute: Callable[[], None]) -> None:
    """A Ctrl-C before a run has started (reading the inventory, connecting) or outside one:
    Invoke's own answer is a silent exit 1; ours says so and exits 130. A run answers
    signals itself (it stops at a step boundary and reports)."""
    try:
        execute()
    except KeyboardInterrupt:
        raise Exit("interrupted by SIGINT", code=128 + signal.SIGINT) from None


def behave_as_puppetops_under_stock_invoke() -> None:
    """Make stock ``invoke`` (this repository's ``tasks.py``) answer as the ``puppetops``
    script does: exit 2 for an unknown option or one missing its value, Invoke's own options
    refused after a command name, and a Ctrl-C outside a run said and exit 130.

    Invoke's ``Program.run`` maps its parser's errors to exit 1 and takes the commands from
    ``tasks.py`` only as tasks and arguments (copied into a plain ``Collection``), so no hook
    of ours is asked while it parses: the way in is the two ``Program`` methods ``run`` calls
    after loading ``tasks.py``. Idempotent."""
    if getattr(Program.parse_tasks, "puppetops", False):
        return
    stock_parse, stock_execute = Program.parse_tasks, Program.execute

    def parse_tasks(self: Program) -> None:
        _parse_commands_strictly(self, lambda: stock_parse(self))

    def execute(self: Program) -> None:
        _execute_saying_ctrl_c(lambda: stock_execute(self))

    parse_tasks.puppetops = True  # type: ignore[attr-defined]
    Program.parse_tasks, Program.execute = parse_tasks, execute  # type: ignore[method-assign]


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
