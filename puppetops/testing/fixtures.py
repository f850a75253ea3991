"""pytest fixtures for :class:`~puppetops.testing.sshd.SshdFleet` (a pytest plugin).

Enable with ``pytest_plugins = ["puppetops.testing.fixtures"]`` in a top-level conftest.py.

Fleets use an auto-picked free port (``port=None``), because several test runs (ours, other
engineers', CI) share one box and a fixed 2222 would collide between them.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable, Iterator, List

import pytest

from .sshd import SshdFleet, find_sshd

__all__ = ["require_root", "require_sshd", "sshd_fleet", "sshd_fleet30"]


def require_sshd() -> None:
    """Skip the calling test when OpenSSH's server is not installed."""
    if not find_sshd():
        pytest.skip("sshd not installed (Debian package openssh-server); SshdFleet needs a real sshd")


def require_root(why: str = "creates real local users") -> None:
    """Skip the calling test unless running as root."""
    if os.geteuid() != 0:
        pytest.skip(f"needs root: {why}")


def _new_fleet(workdir: Path, count: int, **kwargs: Any) -> SshdFleet:
    require_sshd()
    kwargs.setdefault("port", None)
    return SshdFleet(workdir, count=count, **kwargs)


@pytest.fixture
def sshd_fleet(tmp_path: Path) -> Iterator[Callable[..., SshdFleet]]:
    """Factory: ``sshd_fleet(count=3, **SshdFleet kwargs)`` returns a started fleet under
    ``tmp_path``; every fleet it made is stopped at teardown, even if the test failed."""
    fleets: List[SshdFleet] = []

    def make(count: int = 3, **kwargs: Any) -> SshdFleet:
        fleet = _new_fleet(tmp_path / f"sshd-fleet-{len(fleets)}", count, **kwargs)
        fleets.append(fleet)
        return fleet.start()

    yield make
    for fleet in reversed(fleets):
        fleet.stop()


@pytest.fixture(scope="module")
def sshd_fleet30(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SshdFleet]:
    """30 hosts shared by one test module (starting them takes well under a second, but a
    module of fan-out tests should not pay it per test). Tests must not leave hosts stopped
    or re-keyed; use ``sshd_fleet`` for that."""
    fleet = _new_fleet(tmp_path_factory.mktemp("sshd-fleet30"), 30)
    fleet.start()
    try:
        yield fleet
    finally:
        fleet.stop()
