"""The ``facts`` plan: what each target runs — OS, Puppet packages, layout, init system, services
(read by ``puppetops.steps.facts.gather``)."""
from __future__ import annotations

from puppetops.params import TargetSpec
from puppetops.plan_registry import plan
from puppetops.result import ResultSet
from puppetops.steps.facts import gather


@plan
def facts(run, targets: TargetSpec = "all") -> ResultSet:
    """Gather OS, Puppet packages and versions, package layout, init system and services.

    Each target's facts are merged into its inventory facts for the rest of the run, and are
    the value of its result.
    """
    return run.each("facts", gather, targets)
