"""Package upgrade step: installed packages brought to the newest version the host's package
lists offer (apt) or its repositories have (dnf/yum). Only installed packages are upgraded,
never installed anew. The lists are not refreshed here (``apt-get update`` needs the network
and is the operator's policy); what they offer is what "newest" means.
"""
from __future__ import annotations

import shlex

from ..step import StepContext
from .packages import Packages

_PENDING = {  # prints "name" for each package with an upgrade waiting
    "apt": "apt-get -s -q install --only-upgrade {ps} 2>/dev/null "
           "| sed -n 's/^Inst \\([^ ]*\\) .*/\\1/p'",
    "dnf": "dnf -q check-update {ps} 2>/dev/null | awk 'NF==3{{sub(/\\..*/,\"\",$1); print $1}}'",
    "yum": "yum -q check-update {ps} 2>/dev/null | awk 'NF==3{{sub(/\\..*/,\"\",$1); print $1}}'",
}
_UPGRADE = {
    "apt": "DEBIAN_FRONTEND=noninteractive apt-get install -y -q --only-upgrade {ps}",
    "dnf": "dnf upgrade -y {ps}",
    "yum": "yum update -y {ps}",
}


class PackagesUpgraded(Packages):
    """Each installed package of ``names`` is at the newest version available."""

    name = "packages upgraded"

    def _packages(self) -> str:
        return " ".join(shlex.quote(n) for n in self.names)

    def check(self, ctx: StepContext) -> str | None:
        pending = ctx.run(_PENDING[self._manager(ctx)].format(ps=self._packages())).stdout.split()
        return f"upgrade {' '.join(pending)}" if pending else None

    def change(self, ctx: StepContext) -> None:
        ctx.run(_UPGRADE[self._manager(ctx)].format(ps=self._packages()))
