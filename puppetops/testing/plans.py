"""Unit-test plans without hosts (like Fabric's ``fabric.testing`` and Bolt's BoltSpec).

``PlanTester`` gives a real ``Run`` — real inventory, executor, steps and plans — whose
connections answer from canned responses instead of SSH, and records every command and
upload, so a plan's logic can be tested in milliseconds::

    tester = PlanTester({"targets": ["web1", "web2"]})
    tester.on("hostname -f", stdout="web1.example.com\\n", targets=["web1"])
    tester.on(re.compile(r"^systemctl is-active"), exit_code=3)
    results = tester.run_plan("my_plan", targets="all")
    assert tester.commands("web1") == [...]

Unexpected commands fail the test (``strict=True``) so a plan cannot silently do more than
the test says.
"""
from __future__ import annotations

import re
import threading
from dataclasses import dataclass, field
from typing import Any, Callable, Pattern

from ..inventory import Inventory
from ..output import Output
from ..plan_registry import get_plan
from ..run import Run
from ..target import Target
from ..transport.base import CommandOutput, Connection
from ..transport.pool import ConnectionPool


class UnexpectedCommand(AssertionError):
    """A plan ran a command no ``on()`` rule answers (strict mode)."""


@dataclass
class _Rule:
    match: str | Pattern[str]
    targets: set[str] | None
    respond: Callable[[str, str, bytes | None], CommandOutput]
    times: int | None
    used: int = 0

    def matches(self, target: str, command: str) -> bool:
        if self.targets is not None and target not in self.targets:
            return False
        if self.times is not None and self.used >= self.times:
            return False
        if isinstance(self.match, str):
            return command == self.match
        return self.match.search(command) is not None


@dataclass
class RemoteCall:
    """One recorded remote call."""

    target: str
    command: str
    stdin: bytes | None = None


@dataclass
class _Script:
    rules: list[_Rule] = field(default_factory=list)
    calls: list[RemoteCall] = field(default_factory=list)
    strict: bool = True
    lock: threading.Lock = field(default_factory=threading.Lock)

    def answer(self, target: str, command: str, stdin: bytes | None) -> CommandOutput:
        with self.lock:
            self.calls.append(RemoteCall(target, command, stdin))
            for rule in reversed(self.rules):  # later rules override earlier ones
                if rule.matches(target, command):
                    rule.used += 1
                    return rule.respond(target, command, stdin)
        if self.strict:
            raise UnexpectedCommand(f"{target}: unexpected command {command!r}")
        return CommandOutput(command, 0, "", "", 0.0)


class _FakeConnection(Connection):
    def __init__(self, target: Target, script: _Script):
        super().__init__(target)
        self.script = script
        self.run_as = None  # sudo wrapping is the transport's business, not the plan's

    def _exec(self, command: str, stdin: bytes | None, timeout: float) -> CommandOutput:
        return self.script.answer(self.target.name, command, stdin)

    def close(self) -> None:
        """Nothing to release."""


class _FakePool(ConnectionPool):
    def __init__(self, script: _Script):
        super().__init__()
        self.script = script

    def _make(self, target: Target) -> Connection:
        return _FakeConnection(target, self.script)


class PlanTester:
    def __init__(self, inventory: dict[str, Any] | Inventory, *, strict: bool = True,
                 noop: bool = False, output: Output | None = None):
        self.inventory = inventory if isinstance(inventory, Inventory) else \
            Inventory.from_dict(inventory)
        self.script = _Script(strict=strict)
        # no run lock: these hosts are not real, and tests may run many testers at once
        self.run = Run(self.inventory, noop=noop, output=output, backoff=0.0, lock=False)
        self.run.pool = self.run.executor.pool = _FakePool(self.script)

    def on(self, command: str | Pattern[str], *, stdout: str = "", stderr: str = "",
           exit_code: int = 0, targets: list[str] | None = None, times: int | None = None,
           respond: Callable[[str, str, bytes | None], CommandOutput] | None = None) -> "PlanTester":
        """Answer ``command`` (exact string or compiled regex) on ``targets`` (default: all)."""
        def canned(target: str, cmd: str, stdin: bytes | None) -> CommandOutput:
            return CommandOutput(cmd, exit_code, stdout, stderr, 0.0)

        self.script.rules.append(_Rule(command, set(targets) if targets else None,
                                       respond or canned, times))
        return self

    def run_plan(self, name: str | Callable[..., Any], **params: Any) -> Any:
        fn = get_plan(name).fn if isinstance(name, str) else name
        return fn(self.run, **params)

    def commands(self, target: str) -> list[str]:
        return [c.command for c in self.script.calls if c.target == target]

    def uploads(self, target: str) -> dict[str, bytes]:
        """Files the plan wrote on ``target`` through ``Connection.put``: path → content."""
        found = {}
        for call in self.script.calls:
            m = re.search(r"&& mv -f \S+ (\S+)$", call.command)
            if call.target == target and m and call.stdin is not None:
                found[m.group(1).strip("'")] = call.stdin
        return found
