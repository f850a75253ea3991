"""Shared pytest configuration: fixture plugins shipped in the package."""

pytest_plugins = [
    "puppetops.testing.fixtures",
    "puppetops.lab.fixtures",
]
