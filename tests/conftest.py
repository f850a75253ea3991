"""Shared pytest configuration: fixture plugins shipped in the package, test order, and which
tests share one pytest-xdist worker."""

from pathlib import Path

import pytest

from helpers import build_wheel

pytest_plugins = [
    "puppetops.testing.fixtures",
    "puppetops.lab.fixtures",
    "puppet_fixtures",  # tests/puppet_fixtures.py: the stood-up Puppet infrastructure
    "reliability_plugin",  # tests/reliability_plugin.py: --reliability-json for docs/reliability.md
]

# Tests that check what the stand-up itself left behind (access logs, idempotent re-runs,
# pristine certificates): they run before any test that deploys, rotates or faults the same
# session infrastructure, whatever their file names sort as.
FIRST = ("test_standup_e2e.py",)

# Under pytest-xdist (setup.cfg: -n 2 --dist loadgroup) every test is in a group; a group runs
# on one worker, in collection order:
# - "lab": the lab tests. The session lab and infrastructure are stood up once (each worker is a
#   session of its own, and a second stand-up would double the JVM load of a 2-core box), and
#   the lab tests keep the order they rely on.
# - "serial": tests marked `serial` (setup.cfg) hold something only one test on this machine can
#   hold at a time (the run lock of the local transport or of one fixed ssh address:port, a fixed
#   local user, main's lock file on an sshd host, which is this machine's): one after another.
# - one group per test file for the rest: their sshd fleets listen on ports of their own and
#   what they write is under tmp_path, so files run side by side on both workers; a file keeps
#   its order and sets its module fixtures up once.
# pytest-xdist hands a worker another group only when it has at most two tests left, so in a
# full run the lab worker gets nothing else until the end of the lab: the other worker has
# long run the rest by then.
LAB_GROUP, SERIAL_GROUP = pytest.mark.xdist_group("lab"), pytest.mark.xdist_group("serial")


def xdist_group(item: pytest.Item) -> pytest.MarkDecorator:
    if item.get_closest_marker("lab"):
        return LAB_GROUP
    if item.get_closest_marker("serial"):
        return SERIAL_GROUP
    return pytest.mark.xdist_group(item.path.name)


@pytest.hookimpl(wrapper=True)  # around the other plugins' hooks: first the order, last a check
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]):
    items.sort(key=lambda item: item.path.name not in FIRST)  # stable: the rest keep their order
    for item in items:
        item.add_marker(xdist_group(item))
    yield
    if hasattr(config, "workerinput") and config.getvalue("loadgroup"):
        for item in items:
            if item.get_closest_marker("lab") and not item.nodeid.endswith("@lab"):
                item.stash[UNGROUPED] = True


# Lab tests spread over workers would stand the same lab up twice, take its hosts' locks from
# each other and fault each other's Puppet Servers: they fail before their fixtures instead.
UNGROUPED = pytest.StashKey[bool]()


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    if item.stash.get(UNGROUPED, False):
        pytest.fail("pytest-xdist did not put the lab tests in one group (no @lab suffix on "
                    "their node ids: pytest-xdist#1386, pytest >= 9.2): install the test "
                    "extra's pytest, or run with -n 0", pytrace=False)


@pytest.fixture(autouse=True)
def secrets_of_this_test_only(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch):
    """A secret a test registers (puppetops.secrets: masked in every later output of the
    process) is forgotten after it. Else a worker that runs test_webhook.py's short "s3" before
    test_status.py masks it in a certificate's base64 there, now and then. Lab tests keep the
    secrets of the stood-up infrastructure from one test to the next, as a real process would."""
    if not request.node.get_closest_marker("lab"):
        from puppetops import secrets
        monkeypatch.setattr(secrets, "_secrets", set(secrets._secrets))


@pytest.fixture(scope="session")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """puppetops' wheel, built once per session for every test that installs it."""
    return build_wheel(tmp_path_factory.mktemp("wheel"))
