"""Invoke entry point for this repository: `invoke --list` shows every puppetops command."""
from puppetops.cli import namespace as ns  # noqa: F401  (Invoke looks for `ns`)
from puppetops.cli.program import behave_as_puppetops_under_stock_invoke

behave_as_puppetops_under_stock_invoke()  # usage errors exit 2, as under `puppetops`
