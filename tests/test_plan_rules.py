"""``@requires``: a plan's checks on several parameters together, declared next to the plan
and run before its body (the command line runs them before the run starts: test_cli.py)."""
from __future__ import annotations

import pytest

from puppetops.errors import UsageError
from puppetops.params import check_rules, requires


def _ordered(low: int, high: int) -> None:
    if low > high:
        raise UsageError(f"low ({low}) must not be more than high ({high})")


@requires(_ordered)
def ranged(run, low: int = 1, high: int = 10, note: str = "") -> list:
    run.append((low, high, note))
    return run


def test_a_rule_reads_the_parameters_it_names_given_or_default():
    check_rules(ranged, {"low": 5})
    check_rules(ranged, {"low": 5, "high": 5, "note": "x"})
    with pytest.raises(UsageError, match=r"low \(11\) must not be more than high \(10\)"):
        check_rules(ranged, {"low": 11})  # high is its default


def test_a_call_from_python_runs_the_rules_before_the_plan_starts():
    """@plan checks them first: no header, no lock, the body never reached."""
    from io import StringIO

    from puppetops.inventory import Inventory
    from puppetops.output import JsonOutput, Output
    from puppetops.plan_registry import plan
    from puppetops.run import Run

    ran: list = []

    @plan(name="ranged_for_test", main="main")
    @requires(_ordered)
    def ranged_plan(run, low: int = 1, high: int = 10, main: str = "nowhere") -> None:
        ran.append((low, high))

    class Headers(JsonOutput):
        started: list = []

        def plan_start(self, name, params):
            self.started.append(name)

    said = Headers(stdout=StringIO())
    with Run(Inventory.from_dict({"targets": []}), lock=False, output=Output(said)) as run:
        with pytest.raises(UsageError, match="low"):
            ranged_plan(run, high=0)  # main names no host: the lock would fail first
    assert ran == [] and said.started == []  # a UsageError about low, not about main


def test_rules_add_up_and_keep_the_plans_signature_and_doc():
    def _short(note: str) -> None:
        if len(note) > 3:
            raise UsageError("note: at most 3 characters")

    both = requires(_short)(ranged)
    assert both.rules == (_ordered, _short)
    with pytest.raises(UsageError, match="note"):
        check_rules(both, {"note": "long"})
    import inspect
    assert list(inspect.signature(both).parameters) == ["run", "low", "high", "note"]


def test_a_rule_naming_a_parameter_the_plan_lacks_is_refused_as_the_plan_is_declared():
    def _needs_width(width: int) -> None:
        pass

    with pytest.raises(TypeError, match="@requires\\(_needs_width\\): ranged has no parameter "
                                        "width"):
        requires(_needs_width)(ranged)
