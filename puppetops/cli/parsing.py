"""Invoke parsing for the run tasks.

``RunTask``: a task taking the run options; those declared long-only (``Option.short``) get no
one-letter flag, so an option added to every task never takes the letter another option of
some task had (Invoke gives each argument the first free letter of its name, in order).

``invoke plan NAME key=value ...``: let one task take any number of bare ``key=value`` words.

Invoke's parser hands bare words to a task's positional arguments while one is still
"missing" (its value is ``None``) and otherwise takes them for the next task's name.
``KeyValueTask`` makes one list argument look missing to the parser while it is collecting,
so every following word lands in it; at the end of the command line (when the parser wraps up
the task's context) and everywhere else it shows its collected list. The parser gives no
other hook for this, hence the look at the calling frames, confined to this module.
"""
from __future__ import annotations

import sys
from typing import Any, List

from invoke import Task
from invoke.parser import Argument

from .options import LONG_ONLY

_COLLECTING = {"missing_positional_args", "see_positional_arg"}


class _KeyValueArgument(Argument):
    @property
    def value(self) -> Any:
        frame, callers = sys._getframe(1), set()
        for _ in range(6):
            if frame is None:
                break
            callers.add(frame.f_code.co_name)
            frame = frame.f_back
        if callers & _COLLECTING and "complete_context" not in callers:
            return None
        return self._value

    @value.setter
    def value(self, value: str) -> None:
        self.raw_value = value
        self._value = [*(self._value or []), value]


class RunTask(Task):
    def arg_opts(self, name: str, default: Any, taken_names: set) -> dict:  # noqa: D102
        opts = super().arg_opts(name, default, taken_names)
        if name in LONG_ONLY:
            opts["names"] = opts["names"][:1]
        return opts


class KeyValueTask(RunTask):
    """A task whose ``greedy`` positional list argument swallows every remaining bare word."""

    greedy = "params"

    def get_arguments(self, *args: Any, **kwargs: Any) -> List[Argument]:
        arguments = super().get_arguments(*args, **kwargs)
        for i, arg in enumerate(arguments):
            if arg.name == self.greedy:
                arguments[i] = _KeyValueArgument(names=arg.names, kind=list, positional=True,
                                                 help=arg.help)
        return arguments
