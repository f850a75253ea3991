"""How every puppetops task reads its command line.

``PuppetopsTask`` (all tasks):
- no one-letter flag is assigned by Invoke: only the fixed ``SHORT_FLAGS`` (``-t``, ``-i``,
  ``-n``, ``-f``), meaning the same in every command;
- a positional argument never takes a word that looks like an option: Invoke hands any word
  it does not know as a flag to a positional still missing, so ``command --help`` ran
  ``--help`` on the hosts. Now ``--help``/``-h`` there shows the command's help, and any
  other such word is a usage error (exit 2);
- Invoke's own ``--dry`` ("echo commands instead of running") and ``-p``/``--pty`` are
  refused (exit 2): our tasks run no shell commands through Invoke, so they would mean
  nothing, and a ``--dry`` deploy must never deploy. ``--noop`` (``-n``) says "change
  nothing". (Every other Invoke option given after a command name is refused by
  ``program.py``, under the ``puppetops`` script and stock ``invoke`` alike.)

``TypedTask``: a task whose options come from typed parameters (``puppetops.params``: its
body's signature, a plan's, and the run options of ``options.RunOptions``), each value read
by ``Param.read`` before the body runs, so a bad value is one line and exit 2.

``plan NAME key=value ...``: ``plan`` takes its parameters as ``--param key=value``
(repeatable, an Invoke list option); under the ``puppetops`` script a bare ``key=value`` word
after the plan's name is the same (``Commands``: Invoke's parser asks the command's context
about each word first, and ours answers for those). Stock ``invoke`` copies the tasks into a
plain Collection of its own, so there only ``--param`` works.
"""
from __future__ import annotations

import re
from typing import Any, Callable, Iterable, List, Optional, Sequence

from invoke import Collection, Context, Task
from invoke.exceptions import Exit
from invoke.parser import Argument, ParserContext
from invoke.util import Lexicon

from ..errors import EXIT_USAGE, UsageError
from ..output import FORMATS
from ..params import Doc, Param, describe, signature_params
from .options import SHORT_FLAGS, RunOptions, flag, run_params

_WORD = re.compile(r"[A-Za-z_][\w.-]*=")  # a plan parameter given as key=value


def _looks_like_an_option(word: Any) -> bool:
    return isinstance(word, str) and word.startswith("-") and word != "-" \
        and not word[1:2].isdigit()


class _Named(Argument):
    """Shown as its flag in Invoke's parse errors (``Flag --rerun needed value ...``)."""

    def __repr__(self) -> str:
        return flag(self.name)


class HelpWanted(Exception):
    """``command --help``: the command's help, asked for where its argument was expected."""

    def __init__(self, task: str):
        super().__init__(task)
        self.task = task


class _Positional(_Named):
    """A positional argument that refuses words looking like options (see module doc);
    ``task``: the command's name, for the message."""

    task = "this command"

    def set_value(self, value: Any, cast: bool = True) -> None:  # noqa: D102
        if value in ("--help", "-h"):  # Invoke would take it for the argument
            raise HelpWanted(self.task)
        if _looks_like_an_option(value):
            raise Exit(f"error: {self.task}: expected the {self.name} here, got the option "
                       f"{value}; give the {self.name} first (`--help {self.task}` lists the "
                       "options)", code=EXIT_USAGE)
        super().set_value(value, cast)


class _Text(_Named):
    """An option whose text ``Param.read`` converts (with a one-line error), not Invoke (a
    ``ValueError`` traceback); ``kind`` only tells the help what to show (INT, STRING)."""

    def set_value(self, value: Any, cast: bool = True) -> None:  # noqa: D102
        super().set_value(value, cast=False)


class _PositionalText(_Positional, _Text):
    pass


class PuppetopsTask(Task):
    """Every puppetops task (see module doc)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs["auto_shortflags"] = False
        super().__init__(*args, **kwargs)

    def arg_opts(self, name: str, default: Any, taken_names: set) -> dict:  # noqa: D102
        opts = super().arg_opts(name, default, taken_names)
        if name in SHORT_FLAGS and not opts["positional"]:
            opts["names"] = [*opts["names"], SHORT_FLAGS[name]]
        return opts

    def get_arguments(self, *args: Any, **kwargs: Any) -> List[Argument]:  # noqa: D102
        return [self._named(_Positional(names=a.names, kind=a.kind, positional=True,
                                        help=a.help, attr_name=a.attr_name))
                if a.positional else a for a in super().get_arguments(*args, **kwargs)]

    def _named(self, argument: Argument) -> Argument:
        if isinstance(argument, _Positional):
            argument.task = self.name.replace("_", "-")
        return argument

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if args and isinstance(args[0], Context):
            refuse_local_run_flags(args[0].config.run)
        return super().__call__(*args, **kwargs)


def refuse_local_run_flags(run: Any) -> None:
    """Invoke's ``--dry`` and ``-p``/``--pty`` shape local shell commands, which puppetops
    never runs: given to a puppetops command they would be silently ignored — and ``-p`` was
    deploy-code's no-op letter. Refused (exit 2) instead."""
    if run.dry:
        raise Exit("error: --dry is Invoke's \"echo commands instead of running\", which means "
                   "nothing to puppetops (it runs no local commands); use --noop (-n) to see "
                   "what would change without changing anything", code=EXIT_USAGE)
    if run.pty:
        raise Exit("error: -p/--pty is Invoke's option for local commands, which puppetops "
                   "does not run; for a run that changes nothing use --noop (-n)",
                   code=EXIT_USAGE)


class TypedTask(PuppetopsTask):
    """A task whose options are typed parameters (its own, then the run options if
    ``run_options``); ``body(c, **typed)`` gets each as its type, plus ``options``
    (``RunOptions``) when it takes the run options. ``words``: a list parameter that also
    takes the bare ``key=value`` words after the positionals (``plan NAME key=value ...``)."""

    def __init__(self, body: Callable[..., Any], params: Sequence[Param], *,
                 positional: Sequence[str] = (), words: str | None = None,
                 run_options: bool = True, formats: tuple[str, ...] = FORMATS, name: str,
                 doc: str) -> None:
        def task_body(c: Context, **raw: Any) -> Any:
            return self._run(c, raw)

        task_body.__doc__ = doc
        task_body.__name__ = name
        super().__init__(task_body, name=name, positional=list(positional))
        self.own = list(params)
        self.run_options = run_options
        self.params = self.own + (run_params(formats) if run_options else [])
        self.target_body = body
        self.words = words

    def get_arguments(self, *args: Any, **kwargs: Any) -> List[Argument]:  # noqa: D102
        arguments = [self._named(self._argument(p)) for p in self.params]
        return sorted(arguments, key=lambda a: not a.positional)  # positionals first, in order

    def _argument(self, p: Param) -> Argument:
        names = [p.name.replace("_", "-")]
        positional = p.name in self.positional
        if p.name in SHORT_FLAGS and not positional:
            names.append(SHORT_FLAGS[p.name])
        attr = p.name if "_" in p.name else None
        if p.kind is bool and not positional:
            return _Named(names=names, kind=bool, default=bool(p.default) and not p.required,
                            help=p.help, attr_name=attr)
        if p.name == self.words:
            return _Named(names=names, kind=list, default=[], help=p.help, attr_name=attr)
        kind = _PositionalText if positional else _Text
        return kind(names=names, kind=int if p.kind is int else str, default=None,
                    positional=positional, help=_help(p), attr_name=attr)

    def _run(self, c: Context, raw: dict[str, Any]) -> Any:
        try:
            missing = [flag(p.name) for p in self.params if p.required and raw.get(p.name) is None]
            if missing:
                raise UsageError(f"{', '.join(missing)}: required")
            typed = {p.name: p.read(raw.get(p.name), flag(p.name)) for p in self.params}
        except UsageError as exc:
            raise Exit(f"error: {exc}", code=EXIT_USAGE) from None
        own = {p.name: typed.pop(p.name) for p in self.own}
        if self.run_options:
            own["options"] = RunOptions(**typed)
        return self.target_body(c, **own)


def _help(p: Param) -> str:
    """The option's help with what a value must be and its default, from its type."""
    details = [] if p.kind is str and not p.choices else [p.expected]
    if p.required:
        details.append("required")
    elif p.default not in (None, "", [], ()):
        details.append(f"default {p.default}")
    return p.help + (f" ({'; '.join(details)})" if details else "")


def typed_task(*, positional: Sequence[str] = (), words: str | None = None,
               run_options: bool = True, formats: tuple[str, ...] = FORMATS
               ) -> Callable[[Callable[..., Any]], TypedTask]:
    """Make ``fn(c, ..., options)`` a ``TypedTask``: its parameters (after the context; not
    ``options``) typed by its hints, described by its docstring's ``Args:`` section;
    ``formats``: the choices of its ``--format``."""
    def make(fn: Callable[..., Any]) -> TypedTask:
        params = [p for p in signature_params(fn) if p.name != "options"]
        made = TypedTask(fn, params, positional=positional, words=words,
                         run_options=run_options, formats=formats, name=fn.__name__,
                         doc=task_doc(describe(fn)))
        made.__module__ = fn.__module__
        return made
    return make


def task_doc(doc: Doc) -> str:
    """A task's docstring: the summary on one line (``--list`` shows the first line), then the
    rest of the text."""
    rest = doc.text.split("\n\n", 1)[1] if "\n\n" in doc.text else ""
    return doc.summary + (f"\n\n{rest}" if rest else "")


class Commands(Collection):
    """The command collection as the ``puppetops`` script parses it: its parser contexts are
    ``CommandContext`` (stock ``invoke`` copies the tasks into a plain Collection of its own,
    so there ``plan`` takes its parameters as ``--param key=value`` only)."""

    def to_contexts(self, ignore_unknown_help: Optional[bool] = None) -> List[ParserContext]:
        return [CommandContext(name=name, aliases=aliases,
                               args=self[name].get_arguments(
                                   ignore_unknown_help=ignore_unknown_help),
                               words=getattr(self[name], "words", None))
                for name, aliases in self.task_names.items()]


class CommandContext(ParserContext):
    """One command's parser context. Invoke's parser asks ``word in context.flags`` before
    anything else; with ``words`` (a list option), ``flags`` (``_Flags``) also answers for a
    bare ``key=value`` word after the positionals, as one more value of that option, unless
    the option before it still waits for its value (``--query x=y`` stays the query)."""

    def __init__(self, name: str, aliases: Iterable[str], args: Iterable[Argument],
                 words: Optional[str] = None) -> None:
        super().__init__(name=name, aliases=aliases)
        self.flags = _Flags(self)
        for argument in args:
            self.add_arg(argument)
        self.words = self.args[words] if words else None

    def takes_word(self, word: str) -> bool:
        return self.words is not None and bool(_WORD.match(word)) \
            and not self.missing_positional_args and not self.flags.waiting()


class _Flags(Lexicon):
    """A context's flags, answering also for the words ``CommandContext.takes_word`` takes;
    it remembers the last option the parser switched to, to know whether a value is awaited."""

    def __init__(self, context: CommandContext) -> None:
        super().__init__()
        object.__setattr__(self, "context", context)
        object.__setattr__(self, "last", None)

    def __contains__(self, word: object) -> bool:
        return super().__contains__(word) or self._takes(word)

    def __getitem__(self, word: str) -> Argument:
        if self._takes(word):
            return _Word(word, self.context.words)
        argument = super().__getitem__(word)
        object.__setattr__(self, "last", argument)
        return argument

    def _takes(self, word: object) -> bool:
        # ``self.__dict__``: a copy (the parser deep-copies its contexts) is asked about its
        # attributes while it is rebuilt, before ``context`` is set again
        context = self.__dict__.get("context")
        return context is not None and isinstance(word, str) \
            and not super().__contains__(word) and context.takes_word(word)

    def waiting(self) -> bool:
        """The last option seen takes a value and has none yet (the next word is its value)."""
        return self.last is not None and self.last.takes_value and self.last.raw_value is None


class _Word(_Named):
    """A bare ``key=value`` word: seen (set) by the parser, it is one more value of ``into``."""

    def __init__(self, word: str, into: Argument) -> None:
        super().__init__(names=[into.name], kind=bool)
        self.word, self.into = word, into

    def set_value(self, value: Any, cast: bool = True) -> None:  # noqa: D102
        self.into.set_value(self.word)
