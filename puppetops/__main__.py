"""The ``puppetops`` console script (and ``python -m puppetops``).

It imports the command line inside ``main``: loading every command takes a second or two, and
a Ctrl-C (or SIGTERM from a supervisor) in that time must end the command quietly with the
signal's exit code, not with a traceback from the middle of an import.
"""
from __future__ import annotations

import signal
import sys

from .errors import signal_exit_code  # light: the package loads its names on first use


def main() -> None:
    previous = signal.signal(signal.SIGTERM, _stop_loading)
    try:
        from .cli.program import main as run_commands
    except KeyboardInterrupt:
        _stop_loading(signal.SIGINT, None)
    signal.signal(signal.SIGTERM, previous)
    run_commands()


def _stop_loading(signum: int, frame: object) -> None:
    print(f"interrupted by {signal.Signals(signum).name} while loading: nothing was run",
          file=sys.stderr)
    sys.exit(signal_exit_code(signum))


if __name__ == "__main__":
    main()
