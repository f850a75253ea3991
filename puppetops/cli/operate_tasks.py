"""Invoke tasks that operate the infrastructure: deploy-code, rotate-lb-member, lb-ready,
install-webhook, and demo (the main job: a lab taken through the whole lifecycle). Runs go
through ``runner.execute``, so they share the run options, inventory lock, output formats and
exit codes of every command."""
from __future__ import annotations

import sys
from typing import Any

from invoke import task

from ..errors import UsageError
from ..lab import DEFAULT_BRIDGE, DEFAULT_STATE_DIR, DEFAULT_SUBNET, Lab, LabError
from ..output import HumanOutput
from .options import help_for, validate
from .parsing import RunTask
from .runner import execute, fail, run_plan
from .tasks import RUN_OPTIONS

_LBS = "the load balancers (default: loadbalancers)"


def _number(name: str, value: Any, kind: type) -> Any:
    try:
        number = kind(value)
    except (TypeError, ValueError):
        raise fail(UsageError(f"--{name.replace('_', '-')}: expected a number, got {value!r}")) \
            from None
    if number <= 0:
        raise fail(UsageError(f"--{name.replace('_', '-')}: must be greater than 0"))
    return number


@task(klass=RunTask, help=help_for(
    *RUN_OPTIONS, "targets",
    env="environments: a name, a comma list, or all (every branch); default production",
    main="the host with the control repo (default: main)", loadbalancers=_LBS,
    modules="also deploy Puppetfile modules (r10k -m; the deployer always runs)",
    incremental="with modules: only changed or floating modules (r10k --incremental)",
    drain="drain servers whose deploy failed or differs (default; --no-drain: leave them)"))
def deploy_code(c, env="production", targets=None, inventory=None, main="main",
                loadbalancers="loadbalancers", modules=False, incremental=False, drain=True,
                format="human", concurrency=100, attempts=None, noop=False,
                log_file=None, strict=False, timeout=None, rerun=None, max_fail_percentage=None):
    """Deploy code on main and every compiler; flush caches only if all have the same commit."""
    from puppetops.plans.deploy_code import deploy_code as plan, environment_list
    run_plan(plan, {"env": env, "main": main, "loadbalancers": loadbalancers,
                    "modules": modules, "incremental": incremental, "drain": drain},
             targets=targets, others={"main": main, "loadbalancers": loadbalancers},
             checks=lambda: environment_list(env), inventory=inventory, format=format,
             concurrency=concurrency, attempts=attempts, noop=noop, log_file=log_file,
             strict=strict, timeout=timeout, rerun=rerun, max_fail_percentage=max_fail_percentage)


@task(klass=RunTask, help=help_for(
    *RUN_OPTIONS, "targets", loadbalancers=_LBS,
    batch_size="members out at the same time (default 1)",
    action="maintenance: restart (default), upgrade (puppetserver package), or a plan name",
    drain_timeout="seconds to wait for a drained member's sessions to end (default 600)",
    up_timeout="seconds to wait for a member to be UP again (default 300)"))
def rotate_lb_member(c, targets=None, inventory=None, loadbalancers="loadbalancers",
                     batch_size=1, action="restart", drain_timeout=600, up_timeout=300,
                     format="human", concurrency=100, attempts=None, noop=False, log_file=None,
                     strict=False, timeout=None, rerun=None, max_fail_percentage=None):
    """Drain, maintain, health-check and re-add compilers, one batch at a time."""
    from puppetops.plans.rotate_lb_member import rotate_lb_member as plan
    from puppetops.steps.maintenance import action as resolve
    params = {"loadbalancers": loadbalancers,
              "batch_size": _number("batch_size", batch_size, int), "action": action,
              "drain_timeout": _number("drain_timeout", drain_timeout, float),
              "up_timeout": _number("up_timeout", up_timeout, float)}
    run_plan(plan, params, targets=targets, others={"loadbalancers": loadbalancers},
             checks=lambda: resolve(action), inventory=inventory, format=format,
             concurrency=concurrency, attempts=attempts, noop=noop, log_file=log_file,
             strict=strict, timeout=timeout, rerun=rerun, max_fail_percentage=max_fail_percentage)


@task(klass=RunTask, help=help_for(
    *RUN_OPTIONS, "targets", loadbalancers=_LBS,
    up_timeout="seconds to wait for a member to be UP again (default 300)"))
def lb_ready(c, targets=None, inventory=None, loadbalancers="loadbalancers", up_timeout=300,
             format="human", concurrency=100, attempts=None, noop=False, log_file=None,
             strict=False, timeout=None, rerun=None, max_fail_percentage=None):
    """Put compilers back in load balancing if their Puppet Server is healthy (after a run
    was interrupted or killed), and remove the records of why they were out."""
    from puppetops.plans.lb_ready import lb_ready as plan
    params = {"loadbalancers": loadbalancers,
              "up_timeout": _number("up_timeout", up_timeout, float)}
    run_plan(plan, params, targets=targets, others={"loadbalancers": loadbalancers},
             inventory=inventory, format=format, concurrency=concurrency, attempts=attempts,
             noop=noop, log_file=log_file, strict=strict, timeout=timeout, rerun=rerun,
             max_fail_percentage=max_fail_percentage)


@task(klass=RunTask, help=help_for(
    *RUN_OPTIONS, "targets", compilers="the compilers it deploys to (default: compilers)",
    loadbalancers=_LBS,
    bind="the address the webhook listens on, on main (default 0.0.0.0: every address)",
    port="its port (default 8088)",
    secret_file="a file only you can read holding the shared secret (default: one is "
                "generated on main)",
    prefix="environment = PREFIX_branch (r10k's source prefix; default none)"))
def install_webhook(c, targets=None, inventory=None, compilers="compilers",
                    loadbalancers="loadbalancers", bind="0.0.0.0", port=8088, secret_file="",
                    prefix="", format="human", concurrency=100, attempts=None, noop=False,
                    log_file=None, strict=False, timeout=None, rerun=None,
                    max_fail_percentage=None):
    """Install the webhook on main (deploy on git push), deploying to main and every compiler."""
    from puppetops.plans.install_webhook import install_webhook as plan
    params = {"compilers": compilers, "loadbalancers": loadbalancers, "bind": bind,
              "port": _number("port", port, int), "secret_file": secret_file, "prefix": prefix}
    run_plan(plan, params, targets=targets,
             others={"compilers": compilers, "loadbalancers": loadbalancers},
             inventory=inventory, format=format, concurrency=concurrency, attempts=attempts,
             noop=noop, log_file=log_file, strict=strict, timeout=timeout, rerun=rerun,
             max_fail_percentage=max_fail_percentage)


@task(help=help_for(
    "format", "log_file", "timeout",
    state_dir=f"the lab's state directory (default {DEFAULT_STATE_DIR})",
    subnet=f"the lab's IPv4 /24 (default {DEFAULT_SUBNET})",
    bridge=f"the lab's bridge name, also its netns prefix (default {DEFAULT_BRIDGE})",
    compilers="number of compilers (default 2)", agents="number of agents (default 2)"))
def demo(c, format="human", state_dir=DEFAULT_STATE_DIR, subnet=DEFAULT_SUBNET,
         bridge=DEFAULT_BRIDGE, compilers=2, agents=2, log_file=None, timeout=None):
    """The main job: bring a lab up, run the whole lifecycle on it, leave it up to explore."""
    from puppetops import demo as lifecycle
    try:
        validate(format=format, timeout=timeout, log_file=log_file)
    except UsageError as exc:
        raise fail(exc) from None
    sizes = (_number("compilers", compilers, int), _number("agents", agents, int))
    print(f"bringing the lab up in {state_dir} ({bridge}, {subnet})", file=sys.stderr)
    try:
        lab = Lab(state_dir, subnet, bridge).up(*sizes)
    except LabError as exc:
        raise fail(exc) from None
    human = format == "human"

    def everything(run, _targets) -> None:
        done = lifecycle.lifecycle(run, out=sys.stdout if human else None)
        if human and all(stage.ok for stage in done):
            _quiet_step_table(run)  # the stage tables above say it all
        print(lifecycle.overview(done, lab), file=sys.stdout if human else sys.stderr, flush=True)

    execute(everything, inventory=str(lab.inventory), format=format, log_file=log_file,
            timeout=timeout)


def _quiet_step_table(run) -> None:
    """No step-by-step table at the end of the run (failures would still be listed)."""
    for outputter in run.output.outputters:
        if isinstance(outputter, HumanOutput):
            outputter.summary = False
