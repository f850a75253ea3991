"""A Python application in its own virtualenv, installed from wheels already on the host
(``pip install --no-index --find-links``): the host needs no package index, no internet.

``WheelsUploaded`` puts a wheel set in a folder of its own on the host (named by its digest)
and keeps only it and the set before it (to go back to): every code change makes a new set.
``WheelsInstalled`` records the digest of the wheel set it installed in the venv, so a
re-run with the same wheels is a read of one small file, and a new set (new code, new
dependency versions) is installed over the old one.
"""
from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Callable, Sequence

from ..errors import UsageError
from ..step import Finding, Step, StepContext

_REQUIREMENT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*(==[A-Za-z0-9.+!_-]+)?\Z")
_DIGEST = re.compile(r"^[0-9a-f]{16,128}\Z")
STAMP = "puppetops-wheelhouse"  # in the venv: the digest of the wheels installed there


def python_version(ctx: StepContext) -> str:
    """``MAJOR.MINOR MACHINE`` of the host's ``python3`` (``wheelhouse.python_tag`` there)."""
    out = ctx.run("python3 -c 'import platform, sys; print(\"%d.%d %s\" % "
                  "(sys.version_info[0], sys.version_info[1], platform.machine()))'", check=False)
    return out.stdout.strip() if out.ok else "no python3"


class Virtualenv(Step):
    """A virtualenv at ``path`` made by the host's ``python3`` (with pip)."""

    name = "virtualenv"

    def __init__(self, path: str):
        super().__init__()
        self.path = path

    def check(self, ctx: StepContext) -> str | None:
        py = shlex.quote(f"{self.path}/bin/python")
        if ctx.test(f"{py} -c 'import pip' 2>/dev/null"):
            return None
        return f"create the virtualenv {self.path}"

    def change(self, ctx: StepContext) -> None:
        ctx.run(f"python3 -m venv {shlex.quote(self.path)}")


COMPLETE = "complete"  # in a wheel set's folder once all of its wheels are there


class WheelsUploaded(Step):
    """The wheel set ``digest`` is in ``<wheelhouse>/<digest>`` on the host (unless ``stamp``,
    the venv's record of what it installed, names it already), and of the other sets there
    only the newest stays; anything else in ``wheelhouse`` goes (older sets, unfinished
    uploads, wheels of the flat layout before sets had folders).

    ``wheels`` gives the local wheel files; it is called only when they must be uploaded, so
    a run with nothing new (or a noop run) builds nothing on the controller."""

    name = "wheels uploaded"
    timeout = 900.0

    def __init__(self, wheelhouse: str, digest: str, wheels: Callable[[], Sequence[Path]],
                 stamp: str):
        super().__init__()
        if not _DIGEST.match(digest):
            raise UsageError(f"wheels uploaded: invalid digest {digest!r}")
        self.wheelhouse, self.digest, self.wheels, self.stamp = wheelhouse, digest, wheels, stamp

    @property
    def folder(self) -> str:
        return f"{self.wheelhouse}/{self.digest}"

    def find(self, ctx: StepContext) -> Finding:
        """What is there: the installed digest, and the wheelhouse's entries newest first,
        each a set (a folder marked complete) or not."""
        house = shlex.quote(self.wheelhouse)
        out = ctx.run(f"cat {shlex.quote(self.stamp)} 2>/dev/null; echo; "
                      f"cd {house} 2>/dev/null || exit 0; ls -1tA | while IFS= read -r e; do "
                      f"if [ -f \"$e/{COMPLETE}\" ]; then echo \"set $e\"; "
                      f"else echo \"other $e\"; fi; done")
        installed, _, listing = out.stdout.partition("\n")
        entries = [line.split(" ", 1) for line in listing.splitlines() if " " in line]
        sets = [name for kind, name in entries if kind == "set"]
        upload = installed.strip() != self.digest and self.digest not in sets
        kept = {self.digest, *[name for name in sets if name != self.digest][:1]}
        stale = [name for _, name in entries if name not in kept]
        todo = [f"upload wheels {self.digest[:12]}"] if upload else []
        if stale:
            todo.append(f"remove {len(stale)} old wheel set(s) from {self.wheelhouse}")
        return Finding("; ".join(todo) or None, (upload, stale))

    def apply(self, ctx: StepContext, found: Finding) -> None:
        upload, stale = found.state
        if upload:
            self._upload(ctx)
        if stale:
            ctx.run(f"cd {shlex.quote(self.wheelhouse)} && rm -rf -- "
                    + " ".join(shlex.quote(name) for name in stale))

    def _upload(self, ctx: StepContext) -> None:
        """Into a hidden folder first, marked complete and renamed once every wheel is there:
        an interrupted upload is never taken for a set."""
        incoming = f"{self.wheelhouse}/.incoming-{self.digest}"
        ctx.run(f"rm -rf {shlex.quote(incoming)} {shlex.quote(self.folder)} && "
                f"mkdir -p {shlex.quote(incoming)}")
        for wheel in self.wheels():
            ctx.put(wheel.read_bytes(), f"{incoming}/{wheel.name}", mode=0o644)
        ctx.run(f"touch {shlex.quote(f'{incoming}/{COMPLETE}')} && "
                f"mv {shlex.quote(incoming)} {shlex.quote(self.folder)}")


class WheelsInstalled(Step):
    """``requirements`` (pinned names) installed in the venv from the wheels in
    ``wheelhouse`` only, the last one (the application itself, whose version number may not
    change between builds) reinstalled; ``digest`` names the wheel set."""

    name = "wheels installed"
    timeout = 900.0

    def __init__(self, venv: str, wheelhouse: str, requirements: Sequence[str], digest: str):
        super().__init__()
        bad = [r for r in requirements if not _REQUIREMENT.match(r)]
        if bad or not requirements or not _DIGEST.match(digest):
            raise UsageError(f"wheels installed: invalid requirement or digest: {bad or digest!r}")
        self.venv, self.wheelhouse = venv, wheelhouse
        self.requirements, self.digest = list(requirements), digest

    @property
    def stamp(self) -> str:
        return f"{self.venv}/{STAMP}"

    def check(self, ctx: StepContext) -> str | None:
        if (ctx.read(self.stamp) or "").strip() == self.digest:
            return None
        return f"install {self.requirements[-1]} (wheels {self.digest[:12]}) in {self.venv}"

    def change(self, ctx: StepContext) -> None:
        pip = (f"{shlex.quote(self.venv + '/bin/python')} -m pip install -q "
               f"--disable-pip-version-check --no-index --find-links "
               f"{shlex.quote(self.wheelhouse)}")
        app = shlex.quote(self.requirements[-1])
        words = " ".join(shlex.quote(r) for r in self.requirements)
        ctx.run(f"{pip} {words} && {pip} --force-reinstall --no-deps {app} && "
                f"printf '%s\\n' {shlex.quote(self.digest)} > {shlex.quote(self.stamp)}")
