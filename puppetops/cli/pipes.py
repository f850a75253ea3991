"""Output into a closed pipe (``puppetops --help | head``, ``puppetops facts | head -3``).

The reader has gone, so what is left to print has nowhere to go: that is not an error of
ours worth a traceback. Python's own last flush of stdout at exit would still report one,
so stdout is pointed at /dev/null once its pipe is found closed.
"""
from __future__ import annotations

import os
import sys

from ..output import is_closed_pipe


def settle_stdout() -> None:
    """Flush stdout; if its reader has gone, send the rest (and Python's exit flush) nowhere."""
    try:
        sys.stdout.flush()
    except OSError as exc:
        if not is_closed_pipe(exc):
            raise
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
