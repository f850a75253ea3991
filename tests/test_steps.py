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


def test_wheel_sets_are_uploaded_once_and_only_the_current_and_previous_stay(tmp_path):
    """install_webhook's wheel sets on the host: each in a folder named by its digest, built
    only when it must be uploaded; an upload keeps the set before it (to go back to) and
    removes older ones, unfinished uploads and wheels of the flat layout."""
    from puppetops.steps.python_venv import COMPLETE, WheelsUploaded
    local = tmp_path / "built"
    local.mkdir()
    (local / "a-1-py3-none-any.whl").write_bytes(b"wheel a")
    house, stamp = tmp_path / "wheelhouse", tmp_path / "venv-stamp"
    house.mkdir()
    (house / "old-flat-0.1-py3-none-any.whl").write_bytes(b"flat layout")
    (house / ".incoming-dead").mkdir()
    builds = []

    def wheels():
        builds.append(1)
        return sorted(local.glob("*.whl"))

    def upload(digest, **kwargs):
        return status(WheelsUploaded(str(house), digest, wheels, str(stamp)), **kwargs)

    first, second, third = ("1" * 64, "2" * 64, "3" * 64)
    for n, digest in enumerate((first, second, third)):
        would = upload(digest, noop=True)
        assert would.status == CHANGED and would.message.startswith(f"would upload wheels {digest[:12]}")
        assert not (house / digest).exists() and len(builds) == n  # noop built nothing
        assert upload(digest).status == CHANGED
        assert (house / digest / "a-1-py3-none-any.whl").read_bytes() == b"wheel a"
        assert (house / digest / COMPLETE).is_file()
        time.sleep(0.01)  # folders ordered by mtime
    assert sorted(p.name for p in house.iterdir()) == [second, third]
    assert len(builds) == 3
    assert upload(third).status == UNCHANGED and len(builds) == 3
    stamp.write_text(f"{'4' * 64}\n")  # the venv has a set installed: nothing to upload
    result = upload("4" * 64)
    assert result.status == CHANGED and "remove 1 old wheel set(s)" in result.message
    assert sorted(p.name for p in house.iterdir()) == [third] and len(builds) == 3


def test_a_probe_of_a_service_not_running_yet_is_what_a_noop_run_would_check(tmp_path):
    """A noop run that did not start the service says it would check it; a real run asks
    at once (and fails when it does not answer); a running one is asked in either."""
    from puppetops import StepError
    from puppetops.steps.probe import Probe
    pidfile = tmp_path / "pid"

    def ask(ctx):
        if not pidfile.exists():
            raise StepError("no answer")
        return "answers"

    probe = Probe("service answers", "the service", lambda ctx: pidfile.exists(), ask)
    would = status(probe, noop=True)
    assert would.status == CHANGED and would.message == "would check the service once it runs"
    with local_run() as run:
        failed = run.step(probe, "localhost", catch_errors=True)[0]
    assert failed.status == "failed" and "no answer" in failed.message
    pidfile.write_text("1")
    for noop in (True, False):
        asked = status(probe, noop=noop)
        assert asked.status == UNCHANGED and asked.value == "answers"


def test_a_services_files_are_given_to_its_user_and_made_when_missing(tmp_path):
    """OwnedBy on real files (the user is root here: the box's users are not ours to add)."""
    from puppetops.steps.system_user import OwnedBy, SystemUser
    state, log = tmp_path / "state", tmp_path / "service.log"
    step = OwnedBy("root", dirs=[str(state)], files=[str(log)])
    made = status(step)
    assert made.status == CHANGED and state.is_dir() and log.is_file()
    assert oct(state.stat().st_mode & 0o777) == "0o700" and oct(log.stat().st_mode & 0o777) == "0o600"
    assert status(step).status == UNCHANGED
    (state / "history").write_text("x")
    os.chown(state / "history", 65534, 65534)  # left behind by another owner
    would = status(step, noop=True)
    assert would.status == CHANGED and str(state / "history") in would.message
    assert (state / "history").stat().st_uid == 65534  # noop changed nothing
    assert status(step).status == CHANGED and (state / "history").stat().st_uid == 0
    assert status(SystemUser("root", "/root")).status == UNCHANGED
    missing = status(SystemUser("puppetops-no-such-user", "/nonexistent"), noop=True)
    assert missing.message == "would add system user puppetops-no-such-user"
