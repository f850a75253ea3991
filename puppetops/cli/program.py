"""The ``puppetops`` console script: the same commands as ``invoke`` in this repository."""
from __future__ import annotations

import signal
import sys
from typing import Callable

from invoke import Program
from invoke.exceptions import Exit, ParseError

from .. import __version__
from ..errors import EXIT_USAGE, signal_exit_code
from . import namespace
from .parsing import HelpWanted
from .pipes import settle_stdout


# Invoke's own options the script keeps (one-letter name, if any): help, version, the command
# list, shell completion, Invoke's debug log. The others are about Invoke running local shell
# commands and reading its config files, which no puppetops command does (`puppetops -f json`
# was Invoke's --config: a traceback), so the script has none of them — but --dry and --pty,
# which the commands refuse pointing to --noop (parsing.refuse_local_run_flags).
CORE_OPTIONS = {"help": "h", "version": "V", "list": "l", "list-format": None, "list-depth": None,
                "complete": None, "print-completion-script": None, "debug": "d",
                "write-pyc": None, "dry": "R", "pty": "p"}
REFUSED = "refused: puppetops's no-op is --noop (-n)"


class PuppetopsProgram(Program):
    """Exits 2 (usage error) on a command-line parse error, like every other usage error,
    with one line naming the command: an unknown option is a mistake to fix, never something
    to run. Of Invoke's own options it has only ``CORE_OPTIONS``."""

    def core_args(self):  # noqa: D102 - Invoke hook
        kept = [arg for arg in super().core_args() if arg.name in CORE_OPTIONS]
        for arg in kept:
            letter = CORE_OPTIONS[arg.name]
            arg.names = (arg.name, letter) if letter else (arg.name,)
            if arg.name in ("dry", "pty"):
                arg.help = REFUSED
        return kept

    def update_config(self, merge=True):  # noqa: D102 - Invoke hook
        # Invoke's version reads the options left out above (--echo, --hide, --config...);
        # of its overrides only --dry and --pty are left, for the commands to refuse
        flags = {name: True for name in ("dry", "pty") if self.args[name].value}
        self.config.load_overrides({"run": flags}, merge=False)
        if merge:
            self.config.merge()

    def parse_core(self, argv):  # noqa: D102 - Invoke hook
        parse_core = super().parse_core
        _usage_errors_exit_2(lambda: parse_core(argv))

    def parse_tasks(self):  # noqa: D102 - Invoke hook
        _parse_commands_strictly(self, super().parse_tasks)

    def parse_cleanup(self):  # noqa: D102 - Invoke hook
        _usage_errors_exit_2(super().parse_cleanup)

    def execute(self):  # noqa: D102 - Invoke hook
        _execute_saying_ctrl_c(super().execute)


def _parse_commands_strictly(program: Program, parse_tasks: Callable[[], None]) -> None:
    """Invoke's parse of the command words (``Program.parse_tasks``), with its errors made
    usage errors (exit 2, one line) and Invoke's own options refused after a command name."""
    try:
        _usage_errors_exit_2(parse_tasks)
    except HelpWanted as wanted:
        program.print_task_help(wanted.task)
        raise Exit from None
    if program.core.remainder:  # Invoke keeps the words after `--` for tasks that ask for them
        raise Exit(f"error: puppetops commands read nothing after `--` (got "
                   f"{program.core.remainder!r}): quote a shell command as one word, "
                   "e.g. command 'ls -l /tmp' -t main", code=EXIT_USAGE)
    # Invoke reads its own options after a command name too (`deploy-code -p` was --pty,
    # and `-d`/`-e` --debug/--echo): there they are a mistake for an option of ours
    for arg in program.core_via_tasks.args.values():
        if arg.got_value and arg.name not in ("help", "dry", "pty"):  # the last two: the
            # task's own refusal says what to use instead (parsing.refuse_local_run_flags)
            names = " / ".join(("-" if len(n) == 1 else "--") + n for n in arg.names)
            raise Exit(f"error: {names} is an option of Invoke itself, not of a puppetops "
                       "command (`--help COMMAND` lists a command's options)",
                       code=EXIT_USAGE)


def _usage_errors_exit_2(parse: Callable[[], None]) -> None:
    """One of Invoke's parse steps, its parse errors (`--help nosuch` too) made usage errors."""
    try:
        parse()
    except ParseError as exc:
        raise Exit(_usage(exc), code=EXIT_USAGE) from None


def _execute_saying_ctrl_c(execute: Callable[[], None]) -> None:
    """A Ctrl-C before a run has started (reading the inventory, connecting) or outside one:
    Invoke's own answer is a silent exit 1; ours says so and exits 130. A run answers
    signals itself (it stops at a step boundary and reports)."""
    try:
        execute()
    except KeyboardInterrupt:
        raise Exit("interrupted by SIGINT", code=signal_exit_code(signal.SIGINT)) from None


def behave_as_puppetops_under_stock_invoke() -> None:
    """Make stock ``invoke`` (this repository's ``tasks.py``) answer as the ``puppetops``
    script does: exit 2 for an unknown option or one missing its value, Invoke's own options
    refused after a command name, words after ``--`` refused (nothing reads them), an unreadable
    Invoke config file (``invoke -f json ...``) one line, and a Ctrl-C outside a run said and
    exit 130.

    Invoke's ``Program.run`` maps its parser's errors to exit 1 and takes the commands from
    ``tasks.py`` only as tasks and arguments (copied into a plain ``Collection``), so no hook
    of ours is asked while it parses: the way in is the ``Program`` methods ``run`` calls
    after loading ``tasks.py``. Idempotent."""
    if getattr(Program.parse_tasks, "puppetops", False):
        return
    stock_parse, stock_cleanup = Program.parse_tasks, Program.parse_cleanup
    stock_update, stock_execute = Program.update_config, Program.execute

    def parse_tasks(self: Program) -> None:
        _parse_commands_strictly(self, lambda: stock_parse(self))

    def parse_cleanup(self: Program) -> None:
        _usage_errors_exit_2(lambda: stock_cleanup(self))

    def update_config(self: Program, merge: bool = True) -> None:
        try:
            stock_update(self, merge)
        except Exception as exc:  # Invoke's own config file, from its -f/--config: any error
            if not self.args.config.value:
                raise
            detail = " ".join(str(exc).split())
            raise Exit(f"error: -f/--config {self.args.config.value}: Invoke's config file "
                       f"cannot be read ({type(exc).__name__}: {detail}). Before a command's "
                       "name -f is Invoke's --config; puppetops's -f/--format goes after it",
                       code=EXIT_USAGE) from None

    def execute(self: Program) -> None:
        _execute_saying_ctrl_c(lambda: stock_execute(self))

    parse_tasks.puppetops = True  # type: ignore[attr-defined]
    Program.parse_tasks, Program.parse_cleanup = parse_tasks, parse_cleanup  # type: ignore
    Program.update_config, Program.execute = update_config, execute  # type: ignore


def _usage(exc: ParseError) -> str:
    """``error: deploy-code: No idea what '--bogus' is! (--help deploy-code lists ...)``."""
    command = getattr(exc.context, "name", None)
    if not command:
        if str(exc).startswith("No idea what '-"):  # an option before any command's name
            return f"error: {exc} (a command's options go after its name: `--help COMMAND`)"
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
