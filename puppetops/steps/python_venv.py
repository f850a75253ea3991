"""A Python application in its own virtualenv, installed from wheels already on the host
(``pip install --no-index --find-links``): the host needs no package index, no internet.

``WheelsInstalled`` records the digest of the wheel set it installed in the venv, so a
re-run with the same wheels is a read of one small file, and a new set (new code, new
dependency versions) is installed over the old one.
"""
from __future__ import annotations

import re
import shlex
from typing import Sequence

from ..errors import UsageError
from ..step import Step, StepContext

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
