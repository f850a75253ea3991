"""The ``puppetops`` console script: the same commands as ``invoke`` in this repository."""
from __future__ import annotations

import sys

from invoke import Program
from invoke.exceptions import Exit, ParseError

from .. import __version__
from ..errors import EXIT_USAGE
from . import namespace
from .pipes import settle_stdout


class PuppetopsProgram(Program):
    """Exits 2 (usage error) on a command-line parse error, like every other usage error."""

    def parse_core(self, argv):  # noqa: D102 - Invoke hook
        try:
            super().parse_core(argv)
        except ParseError as exc:
            raise Exit(str(exc), code=EXIT_USAGE) from None

    def parse_tasks(self):  # noqa: D102 - Invoke hook
        try:
            super().parse_tasks()
        except ParseError as exc:
            raise Exit(str(exc), code=EXIT_USAGE) from None


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
