"""Where a command's targets come from: ``--targets``, ``--rerun``, or the command's default.

Checked before anything runs (exit 2, nothing contacted): every target spec the operator gave
(``--targets``, and parameters such as ``main=`` or ``loadbalancers=``) must select at least
one target — ``-t ''`` or an empty group is a mistake, not a run on nobody that reports ok.

``--query 'PQL'`` takes them from PuppetDB (``cli/query.py``), intersected with ``--targets``
when both are given.

``--rerun failure|success|all`` takes the targets from the last run's outcomes
(``puppetops.rerun``). As in Bolt, it replaces ``--targets``: giving both is refused, since
"which of the two did they mean" has no safe answer. It picks targets only; every other
parameter is the operator's, as typed on this command line.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from .. import rerun as outcomes
from . import query
from ..errors import TargetNotFound, UsageError
from ..inventory import Inventory


@dataclass
class Targeting:
    given: str | None = None        # --targets (or the plan's targets=) as typed; None: not given
    default: str | None = None      # the command's own targets when neither is given
    rerun: str | None = None        # --rerun failure|success|all
    query: str | None = None        # --query 'PQL': targets from PuppetDB
    others: dict[str, str] = field(default_factory=dict)  # {"loadbalancers": "lbs", ...}
    label: str = "--targets"
    confined: bool = False          # one step on exactly these targets (locks only them)
    optional: bool = False          # the command may run on no targets (purge_agent certnames=)

    def resolve(self, inventory: Inventory) -> str | None:
        """The target spec the run uses (None: none, for an ``optional`` one); ``UsageError``
        if any spec selects nothing."""
        for name, spec in self.others.items():
            inventory.select_some(spec, f"{name}=")
        if self.query is not None:
            if self.rerun is not None:
                raise UsageError("--query and --rerun: give one of them")
            return query.resolve(inventory, self.query, self.given, self.label)
        if self.rerun is None:
            spec = self.given if self.given is not None else self.default
            if spec is None and self.optional:
                return None
            if spec is None:
                raise UsageError(f"{self.label} is required (or --rerun failure|success|all)")
            inventory.select_some(spec, self.label)
            return spec
        if self.given is not None:
            raise UsageError(f"{self.label} and --rerun: give one of them (--rerun "
                             f"{self.rerun} picks the targets of the last run)")
        return self._from_last_run(inventory)

    def _from_last_run(self, inventory: Inventory) -> str:
        path = outcomes.rerun_path(inventory.path)
        names = outcomes.load(path, self.rerun, inventory.path)
        if not names:
            raise UsageError(f"--rerun {self.rerun}: the last run ({path}) had no target with "
                             f"that outcome; nothing to do")
        spec = ",".join(names)
        try:
            inventory.select(spec)
        except TargetNotFound as exc:
            raise UsageError(f"--rerun {self.rerun}: {path} names a target this inventory "
                             f"lacks now: {exc}") from None
        return spec
