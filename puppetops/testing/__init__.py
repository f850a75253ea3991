"""Test helpers for puppetops users and for puppetops itself.

- ``PlanTester`` (``puppetops.testing.plans``): run plans against canned command responses.
- ``SshdFleet`` (``puppetops.testing.sshd``): real OpenSSH daemons on loopback addresses.
- pytest fixtures (``puppetops.testing.fixtures``): ``sshd_fleet``, ``sshd_fleet30``.
- ``puppetops.testing.webhook``: signed forge payloads, an HTTP client and a recording deploy
  stub for the webhook.
"""
from .plans import PlanTester, UnexpectedCommand
from .sshd import SshdFleet

__all__ = ["PlanTester", "SshdFleet", "UnexpectedCommand"]
