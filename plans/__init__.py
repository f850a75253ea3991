"""puppetops' lifecycle plans (installed as ``puppetops.plans``).

The package exports each plan as its function: ``from puppetops.plans import deploy_code``,
then ``deploy_code(run, env="production")``. A plan's module, with its helpers, is
``puppetops.plans.NAME`` (``from puppetops.plans.deploy_code import environment_list``); the
package attribute of that name is the plan itself. Each module registers its plan with
``@plan`` when imported; ``puppetops.plan_registry.discover()`` finds them by package.

Adding a plan is adding its module: every module here whose function of the same name is a
plan is imported and exported below. A plan module imports no other one (what plans share
lives in ``puppetops.steps``, ``puppetops.puppet`` or ``puppetops.flow``; a plan runs
another by name, ``run.plan("install_puppetdb", ...)``): tests/test_layering.py checks it.
"""
import importlib as _importlib
import pkgutil as _pkgutil

__all__: list[str] = []
for _module in _pkgutil.iter_modules(__path__):
    _plan = getattr(_importlib.import_module(f"{__name__}.{_module.name}"), _module.name, None)
    if hasattr(_plan, "plan_name"):  # set by @plan
        globals()[_module.name] = _plan
        __all__.append(_module.name)
