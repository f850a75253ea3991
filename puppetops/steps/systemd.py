"""A systemd unit file of our own, loaded and enabled (hosts where systemd runs)."""
from __future__ import annotations

import re
import shlex

from ..errors import UsageError
from ..step import StepContext
from ..basic_steps import FileContent

_UNIT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]*\Z")


class SystemdUnit(FileContent):
    """``/etc/systemd/system/NAME.service`` reads ``content``, systemd has loaded that
    content (daemon-reload after a change) and the unit is enabled at boot."""

    name = "systemd unit"

    def __init__(self, unit: str, content: str):
        if not _UNIT.match(unit):
            raise UsageError(f"invalid systemd unit name {unit!r}")
        super().__init__(f"/etc/systemd/system/{unit}.service", content, mode=0o644)
        self.unit = unit

    def _enabled(self, ctx: StepContext) -> bool:
        return ctx.test(f"systemctl is-enabled --quiet {shlex.quote(self.unit)}")

    def check(self, ctx: StepContext) -> str | None:
        wrong = [w for w in (super().check(ctx),
                             None if self._enabled(ctx) else f"enable {self.unit}") if w]
        return "; ".join(wrong) if wrong else None

    def change(self, ctx: StepContext) -> None:
        if super().check(ctx):
            super().change(ctx)
            ctx.run("systemctl daemon-reload")
        if not self._enabled(ctx):
            ctx.run(f"systemctl enable --quiet {shlex.quote(self.unit)}")
