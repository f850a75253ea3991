"""Generic steps on the local transport (real files, real processes, real dpkg)."""
from __future__ import annotations

import os
import time

from puppetops import Finding, Inventory, Run, Step, StepContext
from puppetops.result import CHANGED, UNCHANGED
from puppetops.steps import Daemon, FileContent, FileLine, Packages, Service


def local_run(**kwargs) -> Run:
    """No run lock: this box's other test sessions work on localhost at the same time."""
    return Run(Inventory.from_dict({"targets": ["localhost"]}), lock=False, **kwargs)


def status(step, **kwargs):
    with local_run(**kwargs) as run:
        return run.step(step, "localhost")[0]


def test_file_content_creates_updates_and_then_leaves_alone(tmp_path):
    path = tmp_path / "conf" / "app.conf"
    assert status(FileContent(str(path), "a=1\n", mode=0o640)).status == CHANGED
    assert path.read_text() == "a=1\n" and oct(path.stat().st_mode & 0o777) == "0o640"
    assert status(FileContent(str(path), "a=1\n", mode=0o640)).status == UNCHANGED
    os.chmod(path, 0o600)
    result = status(FileContent(str(path), "a=1\n", mode=0o640))
    assert result.status == CHANGED and "mode" in result.message


def test_file_line_appends_or_replaces_the_matching_line(tmp_path):
    path = tmp_path / "puppet.conf"
    path.write_text("[main]\nserver = old\n")
    assert status(FileLine(str(path), "server = new", match=r"^server\s*=")).status == CHANGED
    assert path.read_text() == "[main]\nserver = new\n"
    assert status(FileLine(str(path), "server = new", match=r"^server\s*=")).status == UNCHANGED
    assert status(FileLine(str(path), "certname = x")).status == CHANGED
    assert path.read_text().endswith("certname = x\n")


def test_packages_installed_are_unchanged_and_missing_ones_reported_in_noop():
    assert status(Packages("openssh-server", "git")).status == UNCHANGED
    result = status(Packages("git", "puppetops-no-such-package"), noop=True)
    assert result.status == CHANGED and result.message == "would install puppetops-no-such-package"


def test_a_supervised_daemon_starts_survives_and_stops(tmp_path):
    pidfile = tmp_path / "sleeper.pid"
    daemon = Daemon(command="sleep 600", pidfile=str(pidfile), log=str(tmp_path / "sleeper.log"))
    service = Service("puppetops-sleeper", "running", daemon=daemon)
    assert status(service).status == CHANGED
    pid = int(pidfile.read_text())
    os.kill(pid, 0)  # alive after the step (and its shell) finished
    assert status(service).status == UNCHANGED
    assert status(Service("puppetops-sleeper", "stopped", daemon=daemon)).status == CHANGED
    time.sleep(0.2)
    assert not os.path.exists(f"/proc/{pid}") or open(f"/proc/{pid}/stat").read().split()[2] == "Z"


class Appended(Step):
    """A test step that keeps what its check read: the lines of a file, handed to apply."""

    def __init__(self, path: str, line: str):
        super().__init__()
        self.path, self.line = path, line

    def find(self, ctx: StepContext) -> Finding:
        lines = (ctx.read(self.path) or "").splitlines()
        todo = None if self.line in lines else f"append {self.line!r}"
        return Finding(todo, lines, len(lines))

    def check(self, ctx: StepContext) -> str | None:
        return self.find(ctx).todo

    def apply(self, ctx: StepContext, found: Finding) -> int:
        ctx.put("".join(f"{x}\n" for x in [*found.state, self.line]), self.path)
        self.verify(ctx)
        return len(found.state) + 1


def test_a_finding_carries_what_the_check_read_into_the_change_and_the_result(tmp_path):
    path = tmp_path / "list"
    path.write_text("a\n")
    would = status(Appended(str(path), "b"), noop=True)
    assert (would.status, would.message, would.value) == (CHANGED, "would append 'b'", 1)
    assert path.read_text() == "a\n"  # noop is the machinery's: apply never ran
    done = status(Appended(str(path), "b"))
    assert (done.status, done.value, path.read_text()) == (CHANGED, 2, "a\nb\n")
    again = status(Appended(str(path), "b"))
    assert (again.status, again.value) == (UNCHANGED, 2)
