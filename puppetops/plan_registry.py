"""Plans: named, documented functions ``fn(run, **params)`` that call steps and other plans.

``@plan`` registers a function under its name and wraps it so the output sees where each plan
starts and ends, and so that a plan only declares its steps: what it returns is the summary of
the steps it ran — one result per target (``puppetops.result.summary``) — unless it returns
a ``ResultSet`` of its own; a plan with more to say about some targets returns ``Notes``. Plans are discovered from the installed ``puppetops.plans`` package and from
a project's own ``plans/`` folder, so operators can add theirs without packaging anything.
"""
from __future__ import annotations

import functools
import importlib
import importlib.util
import inspect
import pkgutil
import sys
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from .errors import Interrupted, PlanFailure, UsageError
from .params import Param, check_rules, describe, signature_params
from .result import Notes, ResultSet, summary

_REGISTRY: dict[str, "PlanInfo"] = {}
_BROKEN: dict[str, str] = {}  # project plan file stem → why it did not load (file:line: error)
PLANS_PACKAGE = "puppetops.plans"
PROJECT_PLANS = "puppetops_project_plans"  # the package name the project's plans/*.py load under


@dataclass
class PlanInfo:
    name: str
    fn: Callable[..., Any]
    summary: str
    module: str

    @property
    def from_project(self) -> bool:
        """Loaded from the project's ``plans/`` folder, not installed with puppetops."""
        return self.module.startswith(f"{PROJECT_PLANS}.")

    @property
    def source(self) -> str:
        """The plan's file (its module's name when it has none)."""
        return getattr(sys.modules.get(self.module), "__file__", None) or self.module

    @property
    def parameters(self) -> dict[str, Param]:
        """The plan's parameters after ``run``, by name: typed by its hints, described by its
        docstring (``puppetops.params``)."""
        return {p.name: p for p in signature_params(self.fn)}

    def coerce(self, raw: dict[str, str], picked: tuple[str, ...] = ()) -> dict[str, Any]:
        """Turn ``key=value`` strings from the command line into the plan's parameter types.

        ``picked``: parameters given another way (``--rerun`` picks ``targets``), so not missing.
        """
        params = self.parameters
        unknown = sorted(set(raw) - set(params))
        if unknown:
            raise UsageError(f"plan {self.name} has no parameter {', '.join(unknown)}; "
                             f"it takes: {', '.join(params) or 'nothing'}")
        missing = [n for n, p in params.items() if p.required and n not in raw and n not in picked]
        if missing:
            raise UsageError(f"plan {self.name} needs {', '.join(f'{m}=...' for m in missing)}")
        return {k: params[k].read(v, f"plan {self.name}: {k}") for k, v in raw.items()}


def plan(fn: Callable[..., Any] | None = None, *, name: str | None = None,
         main: str | None = None):
    """Register ``fn`` as a plan. Usable as ``@plan`` or ``@plan(name="x", main="main")``.

    ``main`` declares a plan that changes the infrastructure: it names the plan's parameter
    whose value (a target spec) is the infrastructure's main server. The run then holds the
    infrastructure lock there from the plan's start to the run's end (``Run.
    lock_infrastructure``), so no other controller's run changes the same infrastructure.

    The plan returns nothing (or ``Notes``): the wrapper returns the summary of the steps run
    since the plan started, the steps of its sub-plans included, with those notes.
    """

    def register(func: Callable[..., Any]) -> Callable[..., Any]:
        plan_name = name or func.__name__
        signature = inspect.signature(func)

        @functools.wraps(func)
        def wrapper(run, *args: Any, **kwargs: Any) -> Any:
            bound = signature.bind_partial(run, *args, **kwargs)
            check_rules(func, bound.arguments)  # before anything: a usage error runs nothing
            if main:
                given = main in bound.arguments
                bound.apply_defaults()
                run.lock_infrastructure(bound.arguments[main], plan_name, required=given)
            run.output.plan_start(plan_name, kwargs)
            start, first_step = time.monotonic(), len(run.steps)
            try:
                value = func(run, *args, **kwargs)
            except (PlanFailure, Interrupted) as exc:
                run.output.plan_end(plan_name, False, time.monotonic() - start, str(exc))
                raise
            if value is None or isinstance(value, Notes):
                value = summary(plan_name, run.steps[first_step:], value)
            ok = getattr(value, "ok", True)
            run.output.plan_end(plan_name, bool(ok), time.monotonic() - start, "")
            return value

        # the plan returns None or Notes; what its callers get is the summary
        wrapper.__annotations__ = {**func.__annotations__, "return": ResultSet}
        wrapper.plan_name = plan_name  # type: ignore[attr-defined]
        known = _REGISTRY.get(plan_name)
        if known is not None and known.module != func.__module__:
            raise UsageError(f"a plan named {plan_name} exists already ({known.module}): "
                             "give this one another name")
        _REGISTRY[plan_name] = PlanInfo(plan_name, wrapper, describe(func).summary,
                                        func.__module__)
        return wrapper

    return register(fn) if fn is not None else register


def discover(project_dir: str | Path | None = None) -> dict[str, PlanInfo]:
    """Import the installed plans and the project's ``plans/*.py`` and return the registry.

    The installed plans are found by package name, as plugins are: the core never imports a
    plan module itself (plans sit above it, docs/architecture.md)."""
    installed = importlib.import_module(PLANS_PACKAGE)
    for info in pkgutil.iter_modules(installed.__path__):
        importlib.import_module(f"{PLANS_PACKAGE}.{info.name}")
    folder = Path(project_dir or ".") / "plans"
    installed_dirs = {Path(p).resolve() for p in installed.__path__}
    if folder.is_dir() and folder.resolve() not in installed_dirs:
        for path in sorted(folder.glob("*.py")):
            if path.name.startswith("_"):
                continue
            _load_project_plan(path)
    return dict(_REGISTRY)


def _load_project_plan(path: Path) -> None:
    """Import one of the project's plan files. One that fails (a syntax error, a bad import)
    is recorded in ``broken_plans()`` and skipped: every other command keeps working."""
    module_name = f"{PROJECT_PLANS}.{path.stem}"
    if module_name in sys.modules or path.stem in _BROKEN:
        return
    spec = importlib.util.spec_from_file_location(module_name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)  # type: ignore[union-attr]
    except Exception as exc:  # the operator's code: any error is theirs to see, in one line
        del sys.modules[module_name]
        _BROKEN[path.stem] = f"{path}:{_line_in(path, exc)}: {type(exc).__name__}: {exc}"


def _line_in(path: Path, exc: BaseException) -> int | str:
    if isinstance(exc, SyntaxError) and exc.lineno:
        return exc.lineno
    frames = [f for f in traceback.extract_tb(exc.__traceback__)
              if Path(f.filename).resolve() == path.resolve()]
    return frames[-1].lineno if frames else "?"


def broken_plans() -> dict[str, str]:
    """The project's plan files that did not load: file stem → ``file:line: error``."""
    return dict(_BROKEN)


def get_plan(name: str) -> PlanInfo:
    if name not in _REGISTRY:
        discover()
    if name not in _REGISTRY and name in _BROKEN:
        raise UsageError(f"plan {name} did not load: {_BROKEN[name]}")
    if name not in _REGISTRY:
        import difflib
        close = difflib.get_close_matches(name, list(_REGISTRY), n=3)
        hint = f" Did you mean: {', '.join(close)}?" if close else ""
        raise UsageError(f"unknown plan {name!r}.{hint} (the command `plans` lists them)")
    return _REGISTRY[name]
