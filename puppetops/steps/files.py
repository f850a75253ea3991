"""File steps: ensure one line in a file, edit a file by a function (whole-file content and
uploads are core steps: ``puppetops.basic_steps``)."""
from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Callable

from ..errors import UsageError
from ..step import Step, StepContext


def _lines(text: str) -> list[str]:
    """The lines of a file as the file has them: split at "\n" only. ``str.splitlines`` also
    splits at \r, \x85, \u2028 and others, so a line containing one was never found again and
    was appended on every run."""
    lines = text.split("\n")
    return lines[:-1] if lines[-1] == "" else lines


class FileLine(Step):
    """Ensures a line is present in a file; with ``match`` (a regex), replaces the first
    matching line instead of appending (like Ansible's lineinfile)."""

    name = "file_line"

    def __init__(self, path: str, line: str, *, match: str | None = None):
        super().__init__()
        if "\n" in line:  # it could never be found as one line, and would be added every run
            raise UsageError(f"file_line {path}: the line contains a newline; use FileContent "
                             "for several lines")
        self.path, self.line = path, line
        self.match = re.compile(match) if match else None

    def _desired(self, current: str | None) -> str:
        lines = _lines(current or "")
        if self.line in lines:
            return current or ""
        if self.match:
            for i, existing in enumerate(lines):
                if self.match.search(existing):
                    lines[i] = self.line
                    return "\n".join(lines) + "\n"
        return "\n".join(lines + [self.line]) + "\n"

    def check(self, ctx: StepContext) -> str | None:
        current = ctx.read(self.path)
        if current is not None and self.line in _lines(current):
            return None
        return f"set line {self.line!r} in {self.path}"

    def change(self, ctx: StepContext) -> None:
        current = ctx.read(self.path)
        mode = None if current is not None else 0o644
        q = shlex.quote(self.path)
        if current is not None:
            mode = int(ctx.run(f"stat -c %a {q}").stdout.strip(), 8)
        ctx.put(self._desired(current), self.path, mode=mode)


class FileEdit(Step):
    """Ensures a file that others edit too reads ``edit(ctx, current)``.

    For config files we manage only parts of (a setting, a rule, a service line): a subclass
    implements ``path(ctx)`` and ``edit(ctx, current)`` (current is None when the file does
    not exist), and every line it does not manage stays. Both may depend on the target, since
    paths come from its package layout. An unchanged file is never rewritten; an edited file
    keeps its mode and owner; a new one gets ``mode`` and ``owner``.
    """

    name = "file_edit"
    mode = 0o644
    owner: str | None = None

    def path(self, ctx: StepContext) -> str:
        raise NotImplementedError

    def edit(self, ctx: StepContext, current: str | None) -> str:
        raise NotImplementedError

    def _wanted(self, ctx: StepContext) -> tuple[str, str | None, str]:
        path = self.path(ctx)
        current = ctx.read(path)
        return path, current, self.edit(ctx, current)

    def check(self, ctx: StepContext) -> str | None:
        path, current, wanted = self._wanted(ctx)
        if current == wanted:
            return None
        return f"{'create' if current is None else 'edit'} {path}"

    def change(self, ctx: StepContext) -> None:
        path, current, wanted = self._wanted(ctx)
        q = shlex.quote(path)
        if current is None:
            ctx.run(f"mkdir -p {shlex.quote(str(Path(path).parent))}")
            mode, owner = self.mode, self.owner
        else:
            mode_text, owner = ctx.run(f"stat -c '%a %u:%g' {q}").stdout.split()
            mode = int(mode_text, 8)
        ctx.put(wanted, path, mode=mode)
        if owner:
            ctx.run(f"chown {shlex.quote(owner)} {q}")


class FileEditedBy(FileEdit):
    """``path`` reads what ``edit(current)`` makes of it — a pure function of its text, for a
    file a plan changes one part of (a target out of an inventory another plan wrote); its
    mode and owner stay. A missing file stays missing when ``edit(None)`` is None."""

    def __init__(self, name: str, path: str, edit: Callable[[str | None], str | None]):
        super().__init__()
        self.name, self._path, self._edit = name, path, edit

    def path(self, ctx: StepContext) -> str:
        return self._path

    def edit(self, ctx: StepContext, current: str | None) -> str | None:
        return self._edit(current)
