"""A service's own unprivileged user, and the files that user reads and writes.

A service that needs no root privilege locally runs as a system user of its own (no login
shell, no password): a fault in it — the webhook parses requests from the network — then
reaches only what that user owns.
"""
from __future__ import annotations

import re
import shlex
from typing import Sequence

from ..errors import UsageError
from ..step import Step, StepContext

_NAME = re.compile(r"^[a-z_][a-z0-9_-]{0,30}\Z")


def user_name(name: str) -> str:
    """``name`` if it is a portable system user name; else ``UsageError``."""
    if not _NAME.match(name):
        raise UsageError(f"invalid user name {name!r}: lowercase letters, digits, _ and -")
    return name


class SystemUser(Step):
    """System user ``name`` (and its group) exists: no login shell, home ``home`` (not
    created)."""

    name = "system user"

    def __init__(self, user: str, home: str):
        super().__init__()
        self.user, self.home = user_name(user), home

    def check(self, ctx: StepContext) -> str | None:
        return None if ctx.test(f"id -u {self.user} >/dev/null 2>&1") else \
            f"add system user {self.user}"

    def change(self, ctx: StepContext) -> None:
        ctx.run(f"useradd --system --user-group --no-create-home --home-dir "
                f"{shlex.quote(self.home)} --shell /usr/sbin/nologin {self.user}")


class OwnedBy(Step):
    """Everything in ``dirs`` (made, mode 0700, when missing) and the ``files`` (made empty,
    mode 0600, when missing) belongs to ``user`` and its group; modes are left alone."""

    name = "owned by"

    def __init__(self, user: str, dirs: Sequence[str] = (), files: Sequence[str] = ()):
        super().__init__()
        self.user, self.dirs, self.files = user_name(user), list(dirs), list(files)
        self.name = f"owned by {self.user}"

    def check(self, ctx: StepContext) -> str | None:
        missing = " ".join(f"[ -d {shlex.quote(d)} ] || echo {shlex.quote(d)};" for d in self.dirs)
        missing += " ".join(f"[ -e {shlex.quote(f)} ] || echo {shlex.quote(f)};"
                            for f in self.files)
        paths = " ".join(shlex.quote(p) for p in self.dirs + self.files)
        out = ctx.run(f"id -u {self.user} >/dev/null 2>&1 || {{ echo {paths}; exit 0; }}; "
                      f"{missing} find {paths} \\( ! -user {self.user} -o ! -group {self.user} "
                      f"\\) -print 2>/dev/null; true")
        wrong = sorted(set(out.stdout.split()))
        return f"give {', '.join(wrong)} to {self.user}" if wrong else None

    def change(self, ctx: StepContext) -> None:
        owner = f"{self.user}:{self.user}"
        made = [f"[ -d {shlex.quote(d)} ] || install -d -m 700 {shlex.quote(d)}"
                for d in self.dirs]
        made += [f"[ -e {shlex.quote(f)} ] || install -m 600 /dev/null {shlex.quote(f)}"
                 for f in self.files]
        paths = " ".join(shlex.quote(p) for p in self.dirs + self.files)
        ctx.run(" && ".join([*made, f"chown -R {owner} {paths}"]))
