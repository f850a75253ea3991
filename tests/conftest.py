"""Shared pytest configuration: fixture plugins shipped in the package."""

pytest_plugins = [
    "puppetops.testing.fixtures",
    "puppetops.lab.fixtures",
    "puppet_fixtures",  # tests/puppet_fixtures.py: the stood-up Puppet infrastructure
    "reliability_plugin",  # tests/reliability_plugin.py: --reliability-json for docs/reliability.md
]
