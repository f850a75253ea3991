"""File steps: upload a file, ensure a file's whole content, ensure one line in a file."""
from __future__ import annotations

import hashlib
import re
import shlex
from pathlib import Path

from ..errors import UsageError
from ..step import Step, StepContext


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class FileContent(Step):
    """Ensures ``path`` has exactly ``content`` (and ``mode``/``owner`` when given).

    Checks by SHA-256 so unchanged files are never rewritten; writes atomically.
    """

    name = "file"

    def __init__(self, path: str, content: bytes | str, *, mode: int | None = None,
                 owner: str | None = None):
        super().__init__()
        self.path = path
        self.content = content.encode() if isinstance(content, str) else content
        self.mode, self.owner = mode, owner

    def _state(self, ctx: StepContext) -> tuple[str | None, str | None, str | None]:
        q = shlex.quote(self.path)
        # the content on stdin: for a name with a backslash or newline, `sha256sum FILE` escapes
        # the name and puts a backslash before the digest, which then never matches
        out = ctx.run(f"[ -f {q} ] && sha256sum < {q} | cut -d' ' -f1 && stat -c '%a %U:%G' {q}"
                      " || true")
        lines = out.stdout.split()
        if not lines:
            return None, None, None
        return lines[0], lines[1], lines[2]

    def check(self, ctx: StepContext) -> str | None:
        digest, mode, owner = self._state(ctx)
        if digest is None:
            return f"create {self.path}"
        wrong = []
        if digest != _digest(self.content):
            wrong.append("content")
        if self.mode is not None and int(mode, 8) != self.mode:
            wrong.append(f"mode {mode}→{self.mode:o}")
        if self.owner and owner not in (self.owner, f"{self.owner}:{self.owner}") \
                and owner.split(":")[0] != self.owner.split(":")[0]:
            wrong.append(f"owner {owner}→{self.owner}")
        return f"update {self.path} ({', '.join(wrong)})" if wrong else None

    def change(self, ctx: StepContext) -> None:
        q = shlex.quote(self.path)
        ctx.run(f"mkdir -p {shlex.quote(str(Path(self.path).parent))}")
        ctx.put(self.content, self.path, mode=self.mode if self.mode is not None else 0o644)
        if self.owner:
            ctx.run(f"chown {shlex.quote(self.owner)} {q}")


class Upload(FileContent):
    """Uploads a local file (``bolt file upload``); unchanged when the remote copy matches."""

    name = "upload"

    def __init__(self, source: str, destination: str, *, mode: int | None = None):
        data = Path(source).read_bytes()
        super().__init__(destination, data, mode=mode)
        self.source = source


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
