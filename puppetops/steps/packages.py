"""Package step: ensure OS packages are installed (apt on Debian, dnf/yum on EL)."""
from __future__ import annotations

import shlex

from ..step import Step, StepContext

_MANAGERS = {
    "apt": ("dpkg-query -W -f='${{Status}}' {p} 2>/dev/null | grep -q 'install ok installed'",
            "DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends {ps} "
            "|| (apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q "
            "--no-install-recommends {ps})"),
    "dnf": ("rpm -q {p} >/dev/null 2>&1", "dnf install -y {ps}"),
    "yum": ("rpm -q {p} >/dev/null 2>&1", "yum install -y {ps}"),
}


class Packages(Step):
    """Ensures every package in ``names`` is installed; installs only the missing ones."""

    name = "packages"
    timeout = 1800.0

    def __init__(self, *names: str):
        super().__init__()
        self.names = names

    def _manager(self, ctx: StepContext) -> str:
        for manager in ("apt", "dnf", "yum"):
            binary = "apt-get" if manager == "apt" else manager
            if ctx.test(f"command -v {binary} >/dev/null"):
                return manager
        raise ValueError("no supported package manager (apt, dnf, yum) on the target")

    def packages(self, ctx: StepContext) -> tuple[str, ...]:
        """The packages this target needs (subclasses choose by its layout)."""
        return self.names

    def _missing(self, ctx: StepContext) -> list[str]:
        probe = _MANAGERS[self._manager(ctx)][0]
        script = "; ".join(f"{probe.format(p=shlex.quote(n))} || echo {shlex.quote(n)}"
                           for n in self.packages(ctx))
        return ctx.run(script).stdout.split()

    def check(self, ctx: StepContext) -> str | None:
        missing = self._missing(ctx)
        return f"install {' '.join(missing)}" if missing else None

    def change(self, ctx: StepContext) -> None:
        missing = self._missing(ctx)
        install = _MANAGERS[self._manager(ctx)][1]
        ctx.run(install.format(ps=" ".join(shlex.quote(n) for n in missing)))
