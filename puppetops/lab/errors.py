"""The one exception the lab raises.

Every failure the lab can diagnose (not root, missing kernel feature, subnet taken, a host that
did not come up) becomes a ``LabError`` whose message says what to do, so the CLI can print it
and exit 2 instead of showing a traceback.
"""
from __future__ import annotations

from ..errors import EXIT_USAGE, PuppetopsError


class LabError(PuppetopsError):
    """The lab could not be brought up, inspected or torn down; the message says why."""

    exit_code = EXIT_USAGE
