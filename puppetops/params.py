"""Typed parameters, declared once by a Python signature and read from text the same way
everywhere: a plan's parameters (``invoke deploy-code --env x``,
``invoke plan NAME --param key=value``) and the run options (``--concurrency``, ``--timeout``...).

As in Bolt, whose plans type their parameters (``TargetSpec $targets``, ``Integer[1] $n``) and
whose command line follows from them, the type hints say what a value may be: ``str``,
``int``, ``float``, ``bool``, ``list``, ``Optional[...]``, ``Literal[...]`` (a choice), and the
bounded numbers below (``Count``, ``Seconds``, ``Percentage``, ``FileMode``: ``puppetops.bounds``,
which the inventory and the webhook config check with too). ``TargetSpec`` marks a
parameter that names targets, so every such spec is checked against the inventory before a
run starts. Per-parameter help comes from the docstring's ``Args:`` section.

One reader (``Param.read``) turns text into those types, so a bad value is always one line:
``--batch-size: expected an integer of at least 1, got 'x'``.
"""
from __future__ import annotations

import collections.abc
import functools
import inspect
import re
import typing
from dataclasses import dataclass, field
from typing import Annotated, Any, Callable, Literal

from . import bounds
from .bounds import Bound
from .errors import UsageError


@dataclass(frozen=True)
class Check:
    """``Annotated`` metadata: a function that refuses a bad value (``UsageError``), run as the
    value is read from the command line — before the inventory, the transport settings or any
    host — e.g. ``env: Annotated[str, Check(environment_list)]``."""

    fn: Callable[[Any], Any]


class _TargetSpecMarker:
    def __repr__(self) -> str:
        return "TargetSpec"


TARGET_SPEC = _TargetSpecMarker()

TargetSpec = Annotated[str, TARGET_SPEC]
"""Names targets: a comma list of names, aliases, groups, globs or ``all``."""
Count = Annotated[int, bounds.COUNT]
Seconds = Annotated[float, bounds.SECONDS]
Percentage = Annotated[float, bounds.PERCENTAGE]
FileMode = Annotated[str, Check(bounds.file_mode)]
"""A file mode in octal (``0644``), checked as it is read; ``bounds.file_mode`` gives its number."""

REQUIRED = inspect.Parameter.empty

# Help for the target parameters most plans share, used when a plan's docstring does not
# describe them itself.
COMMON_HELP = {
    "targets": "targets: comma list of names, aliases, groups, globs (compiler*) or all",
    "main": "the main server (Puppet Server with the CA): a target or group selecting one",
    "loadbalancers": "the load balancers",
    "compilers": "the compilers",
}

_TRUE, _FALSE = ("true", "yes", "1"), ("false", "no", "0")


@dataclass(frozen=True)
class Param:
    """One typed parameter. ``kind`` is the Python type a value becomes (``str``, ``int``,
    ``float``, ``bool`` or ``list``); ``choices`` the values allowed (``Literal``);
    ``nullable`` whether None is a value (``Optional``)."""

    name: str
    kind: type = str
    default: Any = REQUIRED
    help: str = ""
    choices: tuple[Any, ...] = ()
    bound: Bound | None = None
    nullable: bool = False
    target_spec: bool = False
    checks: tuple[Check, ...] = ()

    @property
    def required(self) -> bool:
        return self.default is REQUIRED

    @property
    def expected(self) -> str:
        """What a value must be, in words (for errors and help)."""
        if self.choices:
            return "one of " + ", ".join(str(c) for c in self.choices)
        if self.bound is not None:
            return self.bound.expected
        return {int: "an integer", float: "a number", bool: "true or false",
                list: "a comma-separated list"}.get(self.kind, "a string")

    def read(self, value: Any, label: str) -> Any:
        """``value`` (text, or already typed) as this parameter's type; None: the default.
        ``UsageError`` naming ``label`` (``--batch-size``, ``plan x: batch_size``) if it is
        not one."""
        if value is None:
            return None if self.required else self.default
        try:
            typed = self._convert(value)
        except (TypeError, ValueError):
            raise UsageError(f"{label}: expected {self.expected}, got {value!r}") from None
        if self.bound is not None and not self.bound.admits(typed):
            raise UsageError(f"{label}: {self.bound.refusal(value)}")
        if self.choices and typed not in self.choices:
            raise UsageError(f"{label}: expected {self.expected}, got {value!r}")
        for check in self.checks:
            try:
                check.fn(typed)
            except UsageError as exc:
                raise UsageError(f"{label}: {exc}") from None
        return typed

    def _convert(self, value: Any) -> Any:
        if not isinstance(value, str):
            if self.kind is float and isinstance(value, int) and not isinstance(value, bool):
                return float(value)
            if isinstance(value, self.kind) and not (self.kind is int and isinstance(value, bool)):
                return value
            raise TypeError(value)
        if self.kind is bool:
            lowered = value.strip().lower()
            if lowered not in _TRUE + _FALSE:
                raise ValueError(value)
            return lowered in _TRUE
        if self.kind is list:
            return [item for item in value.split(",") if item]
        if self.kind in (int, float):
            return self.kind(value.strip())
        return value


def param(name: str, hint: Any, default: Any = REQUIRED, help: str = "") -> Param:
    """The ``Param`` a type hint describes."""
    return Param(name, default=default, help=help, **_shape(hint))


def _shape(hint: Any) -> dict[str, Any]:
    extras: dict[str, Any] = {}
    if typing.get_origin(hint) is Annotated:
        hint, *metadata = typing.get_args(hint)
        for item in metadata:
            if isinstance(item, Bound):
                extras["bound"] = item
            elif isinstance(item, Check):
                extras["checks"] = (*extras.get("checks", ()), item)
            elif item is TARGET_SPEC:
                extras["target_spec"] = True
        return {**_shape(hint), **extras}
    origin = typing.get_origin(hint)
    if origin is typing.Union or type(hint).__name__ == "UnionType":
        members = typing.get_args(hint)
        usable = [m for m in members if m is not type(None)]
        shape = _shape(usable[0]) if usable else {}
        return {**shape, "nullable": type(None) in members}
    if origin is Literal:
        choices = typing.get_args(hint)
        return {"kind": type(choices[0]), "choices": choices}
    if hint in (bool, int, float, str, list):
        return {"kind": hint}
    if hint is tuple or origin in (list, tuple, collections.abc.Sequence):
        return {"kind": list}
    return {"kind": str}


@dataclass(frozen=True)
class Doc:
    """A docstring split into its summary (first paragraph, one line), the text without the
    ``Args:`` section, and that section's ``name: help`` entries."""

    summary: str
    text: str
    args: dict[str, str] = field(default_factory=dict)


_ARGS_HEADING = re.compile(r"^\s*(Args|Arguments|Parameters):\s*$")
_ARG_LINE = re.compile(r"^(\s*)(\w+)(?:\s*\([^)]*\))?:\s*(.*)$")


def describe(fn: Callable[..., Any]) -> Doc:
    """The parts of ``fn``'s docstring. The ``Args:`` section (Google style: ``name: help``,
    continuation lines indented deeper than the names) ends at the first line indented no
    deeper than its heading."""
    lines = (inspect.getdoc(fn) or "").splitlines()
    kept: list[str] = []
    args: dict[str, str] = {}
    i = 0
    while i < len(lines):
        if not _ARGS_HEADING.match(lines[i]):
            kept.append(lines[i])
            i += 1
            continue
        heading, names_at, current = _indent(lines[i]), None, None
        i += 1
        while i < len(lines) and (not lines[i].strip() or _indent(lines[i]) > heading):
            entry = _ARG_LINE.match(lines[i])
            if entry and _indent(lines[i]) <= (names_at if names_at is not None else 10 ** 6):
                names_at, current = _indent(lines[i]), entry.group(2)
                args[current] = entry.group(3).strip()
            elif current is not None and lines[i].strip():
                args[current] = f"{args[current]} {lines[i].strip()}"
            i += 1
    text = "\n".join(kept).strip()
    summary = " ".join(text.split("\n\n")[0].split())
    return Doc(summary, text, args)


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())


def signature_params(fn: Callable[..., Any], skip: int = 1) -> list[Param]:
    """``fn``'s parameters after the first ``skip`` (a plan's ``run``, a task's context), typed
    by its hints (a hint that cannot be resolved reads as text) and described by its
    docstring's ``Args:`` section or, for the usual target parameters, ``COMMON_HELP``."""
    try:
        hints = typing.get_type_hints(fn, include_extras=True)
    except Exception:  # a hint naming something its module cannot resolve: read as text
        hints = {}
    helps = describe(fn).args
    found = []
    for i, p in enumerate(inspect.signature(fn).parameters.values()):
        if i < skip or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            continue
        hint = hints.get(p.name, type(p.default) if p.default not in (REQUIRED, None) else str)
        found.append(param(p.name, hint, p.default, helps.get(p.name, COMMON_HELP.get(p.name, ""))))
    return found


def requires(*rules: Callable[..., Any]) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Declare checks on several of a plan's parameters together (one parameter alone is
    checked by its type: ``Check``, ``Bound``). Each rule names the parameters it reads as its
    own (``def _thresholds(warn_days, error_days)``) and raises ``UsageError`` for values that
    do not go together. The command line runs them once the targets are known and before the
    run starts (``check_rules``: no header, nothing run, exit 2); ``@plan`` runs them first on
    a call from Python too (before its lock and header). Put ``@requires`` under ``@plan``; a
    rule naming a parameter the plan lacks is a ``TypeError`` as the plan is declared."""
    def declare(fn: Callable[..., Any]) -> Callable[..., Any]:
        takes = inspect.signature(fn).parameters
        for rule in rules:
            unknown = [n for n in inspect.signature(rule).parameters if n not in takes]
            if unknown:
                raise TypeError(f"@requires({rule.__name__}): {fn.__name__} has no parameter "
                                f"{', '.join(unknown)}")
        fn.rules = (*getattr(fn, "rules", ()), *rules)  # type: ignore[attr-defined]
        return fn
    return declare


def check_rules(fn: Callable[..., Any], given: dict[str, Any]) -> None:
    """Run ``fn``'s ``@requires`` rules on ``given`` (the parameters passed; the others are
    their defaults); ``UsageError`` from the first that refuses them."""
    defaults = {n: p.default for n, p in inspect.signature(fn).parameters.items()
                if p.default is not REQUIRED}
    values = {**defaults, **given}
    for rule in getattr(fn, "rules", ()):
        rule(**{n: values[n] for n in inspect.signature(rule).parameters if n in values})


__all__ = ["Bound", "Check", "Count", "Doc", "FileMode", "Param", "Percentage", "REQUIRED",
           "Seconds", "TargetSpec", "check_rules", "describe", "param", "requires",
           "signature_params"]
