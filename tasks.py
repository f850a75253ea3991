"""Invoke entry point for this repository: `invoke --list` shows every puppetops command."""
from puppetops.cli import namespace as ns  # noqa: F401  (Invoke looks for `ns`)
