"""Branch → Puppet environment, by r10k's rules, refusing what r10k would refuse.

r10k names an environment after its branch, prefixed with ``<prefix>_`` when the source has a
prefix. Its default for other names (``correct_and_warn``) silently rewrites them (``a/b`` →
``a_b``), so two branches can land on one environment; the ``deploy_code`` plan refuses such
names instead, and so does the webhook — before anything is queued.
"""
from __future__ import annotations

from ..errors import UsageError
from ..puppet import names


class RefusedName(ValueError):
    """A branch whose environment name r10k would refuse (a 422)."""


def environment_for(branch: str, prefix: str = "") -> str:
    """The environment ``branch`` deploys to; ``RefusedName`` (short enough for a log line,
    control characters escaped) when r10k would refuse it."""
    try:
        return names.prefixed(branch, prefix)
    except UsageError:
        shown = repr(branch[:80]) + ("..." if len(branch) > 80 else "")
        raise RefusedName(f"branch {shown} gives no valid environment name: r10k allows only "
                          "letters, digits and underscores (at most 255)") from None
