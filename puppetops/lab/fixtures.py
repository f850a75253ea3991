"""pytest plugin: a session-scoped ``lab`` fixture (a 6-host lab of the tests' own).

Register with ``pytest_plugins = ["puppetops.lab.fixtures"]`` in conftest.py. The tests never
use the operator's lab (``invoke demo``/``lab-up`` leave theirs up in the default state dir,
subnet and bridge): every lab a test session brings up has its own, from ``test_lab``. Set
``PUPPETOPS_TEST_LAB=N`` (0-9) to give a second checkout's test session labs of its own too.
The session lab is taken down at the end unless ``PUPPETOPS_KEEP_LAB=1`` (keep it for the next
run: bring-up is a no-op while it stays healthy).
"""
from __future__ import annotations

import os
from typing import Iterator

import pytest

from .lab import Lab, LabInfo


_ROLES = {"session": (80, "pltest"), "scratch": (81, "plscr"), "demo": (82, "pldemo"),
          "spare": (83, "plspr")}


def test_lab(role: str = "session") -> dict[str, str]:
    """``Lab(**test_lab(role))``: state dir, subnet and bridge of one of the test session's labs
    (roles: session, scratch, demo, spare), never the default lab's."""
    slot = os.environ.get("PUPPETOPS_TEST_LAB", "0")
    if not (slot.isdigit() and int(slot) < 10):
        raise pytest.UsageError(f"PUPPETOPS_TEST_LAB={slot!r}: expected a digit 0-9")
    octet, prefix = _ROLES[role]
    return {"state_dir": f"/var/tmp/puppetops-test-{role}{slot}",
            "subnet": f"10.{octet}.{slot}.0/24", "bridge": f"{prefix}{slot}"}


test_lab.__test__ = False  # a helper, not a test, for pytest's collection


@pytest.fixture(scope="session")
def lab() -> Iterator[LabInfo]:
    """LabInfo of the tests' session lab (main, compiler1, compiler2, lb, agent1, agent2), up."""
    if os.geteuid() != 0:
        pytest.skip("the puppetops lab needs root (network namespaces, bridges, mounts)")
    the_lab = Lab(**test_lab("session"))
    info = the_lab.up()
    yield info
    if os.environ.get("PUPPETOPS_KEEP_LAB") != "1":
        the_lab.down()
