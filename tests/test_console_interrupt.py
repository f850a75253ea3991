"""A signal that reaches the console script before any run has started (while its commands
load, or while a command reads its inventory) ends it with one line and the signal's exit
code: no traceback, nothing run. The signal is real; a hook in the child process sends it to
itself at the moment under test, so the test does not depend on the machine's speed."""
from __future__ import annotations

import signal
import subprocess
import sys
import textwrap

import pytest

from helpers import REPO

pytestmark = [pytest.mark.slow, pytest.mark.reliability(
    fault="SIGINT/SIGTERM to the CLI before a run exists",
    outcome="one line, exit 128+signal, nothing run, no traceback")]

# the child sends itself `signum` as soon as `module` starts importing, then runs the console
# script as installed (puppetops.__main__:main)
WHILE_LOADING = """
import importlib.abc, os, sys
class Trip(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == {module!r}:
            sys.meta_path.remove(self)
            os.kill(os.getpid(), {signum})
        return None
sys.meta_path.insert(0, Trip())
sys.argv = ["puppetops", *{argv!r}]
from puppetops.__main__ import main
main()
"""

# the child sends itself `signum` when the command starts reading its inventory, under the
# console script or stock `invoke` with the repository's tasks.py
WHILE_READING = """
import os, sys
from puppetops.inventory import Inventory
real_load = Inventory.load.__func__
def load(cls, *args, **kwargs):
    os.kill(os.getpid(), {signum})
    return real_load(cls, *args, **kwargs)
Inventory.load = classmethod(load)
{start}
"""
START = {
    "puppetops": "sys.argv = ['puppetops', *{argv!r}]\n"
                 "from puppetops.__main__ import main\nmain()",
    "invoke": "sys.argv = ['invoke', *{argv!r}]\nfrom invoke.main import program\nprogram.run()",
}


def child(script: str, **values) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(script.format(**values))],
                          cwd=REPO, capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("module", ["paramiko", "invoke", "puppetops.cli.program"])
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_while_the_commands_load_ends_quietly(module: str, signum: int,
                                                       tmp_path) -> None:
    inventory = tmp_path / "inventory.yaml"  # never the repository's: that is the demo lab's
    inventory.write_text("targets: [{uri: 127.0.0.1, config: {transport: local}}]\n")
    done = child(WHILE_LOADING, module=module, signum=int(signum),
                 argv=["facts", "-i", str(inventory)])
    assert done.returncode == 128 + signum, done.stderr
    assert "Traceback" not in done.stderr
    assert done.stderr.strip() == (f"interrupted by {signal.Signals(signum).name} while "
                                   "loading: nothing was run")
    assert done.stdout == ""


@pytest.mark.parametrize("program", START)
def test_ctrl_c_before_the_run_starts_ends_quietly(tmp_path, program) -> None:
    inventory = tmp_path / "inventory.yaml"
    inventory.write_text("targets: [{uri: 127.0.0.1, config: {transport: local}}]\n")
    argv = ["command", "-i", str(inventory), "-t", "all", "touch " + str(tmp_path / "ran")]
    done = child(WHILE_READING, signum=int(signal.SIGINT),
                 start=START[program].format(argv=argv))
    assert done.returncode == 130, done.stderr
    assert "Traceback" not in done.stderr
    assert done.stderr.strip() == "interrupted by SIGINT"
    assert not (tmp_path / "ran").exists()
