"""pytest plugin: a session-scoped ``lab`` fixture (the default 6-host lab).

Register with ``pytest_plugins = ["puppetops.lab.fixtures"]`` in conftest.py. The lab is brought
up once per session and taken down at the end, unless ``PUPPETOPS_KEEP_LAB=1`` (keep it for the
next run: bring-up is a no-op while it stays healthy) or unless it was already up when the
session started (then it belongs to whoever brought it up, e.g. a developer working on it).
"""
from __future__ import annotations

import os
from typing import Iterator

import pytest

from .lab import Lab, LabInfo


@pytest.fixture(scope="session")
def lab() -> Iterator[LabInfo]:
    """LabInfo of the default lab (main, compiler1, compiler2, lb, agent1, agent2), up."""
    if os.geteuid() != 0:
        pytest.skip("the puppetops lab needs root (network namespaces, bridges, mounts)")
    the_lab = Lab()
    ours = not the_lab.is_up()
    info = the_lab.up()
    yield info
    if ours and os.environ.get("PUPPETOPS_KEEP_LAB") != "1":
        the_lab.down()
