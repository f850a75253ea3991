"""Hostile strings for the property tests: shell metacharacters, quotes, newlines, ``..``, ``/``,
unicode and 10,000-character strings, each carrying a payload that would create a canary file
if any shell ever ran it as code.

A test makes one ``Canary`` (a unique path under /tmp), draws names from ``hostile(canary)``,
pushes them through whatever would carry them to a shell, and then asserts the canary is absent
— on the controller and, for the lab, on every host (each lab host has a private /tmp).
"""
from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from pathlib import Path

from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st

METACHARACTERS = list(";|&$()`<>*?'\"\\\n") + ["\r", "\t", " ", "{", "}", "!", "#", "~", "=", "%"]
FRAGMENTS = ["..", "/", "../..", "./", "-", "--all", "-rf", "*", "${IFS}", "$HOME", "'\\''",
             "\"'\"", "é", "ß", "İ", "ℝ", "ﬁ", "\u202e", "\u200b", "日本", "🙂", "\x7f", "\x1b[31m"]


@dataclass(frozen=True)
class Canary:
    """A file that exists only if an injected command ran; ``payloads`` would create it."""

    path: str = field(default_factory=lambda: f"/tmp/pwn-{uuid.uuid4().hex}")

    @property
    def payloads(self) -> list[str]:
        """Ways to smuggle ``touch PATH`` into a shell word, with and without spaces (names
        that refuse whitespace are still tried with the ``${IFS}`` forms)."""
        spaced, tight = f"touch {self.path}", f"touch${{IFS}}{self.path}"
        return [f"$({spaced})", f";{spaced}", f"`{spaced}`", f"|{spaced}", f"&&{spaced}",
                f"\n{spaced}\n", f"';{spaced};'", f"\";{spaced};\"", f"$({tight})", f";{tight}",
                f"`{tight}`", f"|{tight}", f"&&{tight}", f"'$({tight})'", f"\"$({tight})\""]

    def assert_absent(self) -> None:
        assert not Path(self.path).exists(), f"injected command ran on the controller: {self.path}"

    def remove(self) -> None:
        Path(self.path).unlink(missing_ok=True)


def hostile(canary: Canary, *, long: bool = True, nul: bool = False) -> st.SearchStrategy[str]:
    """Strings around one of the canary's payloads; sometimes 10,000 characters long.
    ``nul=False`` keeps NUL out (it cannot be in a command-line argument)."""
    alphabet = st.characters(blacklist_categories=("Cs",),
                             blacklist_characters="" if nul else "\x00")
    piece = st.one_of(st.sampled_from(METACHARACTERS), st.sampled_from(FRAGMENTS),
                      st.text(alphabet, min_size=1, max_size=4))
    around = st.lists(piece, max_size=6).map("".join)
    padding = st.sampled_from([0, 0, 0, 10_000]) if long else st.just(0)
    return st.builds(lambda before, payload, after, pad: before + payload + after + "A" * pad,
                     around, st.sampled_from(canary.payloads), around, padding)


def file_name(text: str) -> str:
    """``text`` as one path component: '/' becomes '_' ('.' and '..' name directories and
    are left to ``assume``), so a hostile name stays inside the test's folder."""
    return text.replace("/", "_")


def fits(name: str) -> bool:
    """Whether the file and puppetops' temp file beside it fit the 255-byte name limit."""
    return len((name + ".puppetops-tmp").encode()) <= 255


def run_file_steps(run, targets, directory: str, name: str, content: str, line: str) -> str:
    """FileContent and FileLine at ``directory/name`` on ``targets``: each target either has
    exactly that file (a second run changes nothing: the quoted path was the path written) or,
    only for a name too long for the filesystem, fails with a message. Returns the path."""
    from puppetops.steps import FileContent, FileLine

    path = f"{directory}/{name}"
    expected_ok = fits(name)
    for step in (FileContent(path, content), FileLine(path, line)):
        for attempt in ("change", "again"):
            results = run.step(step, targets, catch_errors=True)
            for result in results:
                if expected_ok:
                    assert result.ok, (attempt, result.target, result.message)
                    assert attempt == "change" or result.status == "unchanged", result.message
                else:
                    assert result.status == "failed" and "too long" in result.message, result.message
    return path


def examples(count: int, *, fixtures: bool = True, process_each: bool = False) -> settings:
    """The hostile suites' hypothesis settings: ``count`` examples, no deadline, no example
    database. ``fixtures``: the examples share function-scoped fixtures (a fleet, a lab run) on
    purpose, and may be slow. ``process_each``: every example starts a process, so no shrinking
    (minutes); the failing example is printed as found."""
    checks = [HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
    return settings(max_examples=count, deadline=None, database=None,
                    suppress_health_check=checks if fixtures or process_each else [],
                    **({"phases": [Phase.explicit, Phase.generate]} if process_each else {}))


def assert_refused_everywhere(results) -> None:
    """Every target failed with a reason: the hostile value was refused, never run."""
    assert not any(r.ok for r in results) and all(r.message for r in results), \
        [(r.target, r.status, r.message) for r in results]
