"""Invoke tasks that stand the infrastructure up: bootstrap-ca, add-compiler, configure-lb,
enroll-agent. Each runs the plan of the same name (``invoke plan NAME`` would too) with the
shared run options, inventory, lock, output and exit codes of ``runner.execute``."""
from __future__ import annotations

from invoke import task

from .options import help_for
from .parsing import RunTask
from .runner import run_plan
from .tasks import RUN_OPTIONS

_MAIN = "the CA host: a target or group selecting exactly one (default: main)"
_ENV = "the environment (branch of the control repo) r10k deploys (default production)"


@task(klass=RunTask, help=help_for(*RUN_OPTIONS, "targets", environment=_ENV))
def bootstrap_ca(c, targets=None, environment="production", inventory=None, format="human",
                 concurrency=100, attempts=None, noop=False, log_file=None, strict=False,
                 timeout=None, rerun=None, max_fail_percentage=None):
    """Stand up main: CA, Puppet Server, control repo and code (plan bootstrap_ca)."""
    from puppetops.plans.bootstrap_ca import bootstrap_ca as plan
    run_plan(plan, {"environment": environment}, targets=targets, others={},
             inventory=inventory, format=format, concurrency=concurrency, attempts=attempts,
             noop=noop, log_file=log_file, strict=strict, timeout=timeout, rerun=rerun,
             max_fail_percentage=max_fail_percentage)


@task(klass=RunTask, help=help_for(
    *RUN_OPTIONS, "targets", main=_MAIN, environment=_ENV,
    loadbalancers="the load balancers to add them to (default: loadbalancers)"))
def add_compiler(c, targets=None, main="main", loadbalancers="loadbalancers",
                 environment="production", inventory=None, format="human", concurrency=100,
                 attempts=None, noop=False, log_file=None, strict=False, timeout=None,
                 rerun=None, max_fail_percentage=None):
    """Add compilers behind the load balancers, certificates signed by main (plan add_compiler)."""
    from puppetops.plans.add_compiler import add_compiler as plan
    run_plan(plan, {"main": main, "loadbalancers": loadbalancers, "environment": environment},
             targets=targets, others={"main": main, "loadbalancers": loadbalancers},
             inventory=inventory, format=format, concurrency=concurrency, attempts=attempts,
             noop=noop, log_file=log_file, strict=strict, timeout=timeout, rerun=rerun,
             max_fail_percentage=max_fail_percentage)


@task(klass=RunTask, help=help_for(*RUN_OPTIONS, "targets",
                                   compilers="the compilers to balance (default: compilers)"))
def configure_lb(c, targets=None, compilers="compilers", inventory=None, format="human",
                 concurrency=100, attempts=None, noop=False, log_file=None, strict=False,
                 timeout=None, rerun=None, max_fail_percentage=None):
    """Configure the load balancers (HAProxy or nginx per lb_backend) over the compilers."""
    from puppetops.plans.configure_lb import configure_lb as plan
    run_plan(plan, {"compilers": compilers}, targets=targets, others={"compilers": compilers},
             inventory=inventory, format=format, concurrency=concurrency, attempts=attempts,
             noop=noop, log_file=log_file, strict=strict, timeout=timeout, rerun=rerun,
             max_fail_percentage=max_fail_percentage)


@task(klass=RunTask, help=help_for(
    *RUN_OPTIONS, "targets", main=_MAIN,
    first_run="--no-first-run: stop once the certificate is installed (the agent's own "
              "schedule makes the first run)"))
def enroll_agent(c, targets=None, main="main", first_run=True, inventory=None, format="human",
                 concurrency=100, attempts=None, noop=False, log_file=None, strict=False,
                 timeout=None, rerun=None, max_fail_percentage=None):
    """Enroll agents: certificates checked and signed on main, first run via the LB."""
    from puppetops.plans.enroll_agent import enroll_agent as plan
    run_plan(plan, {"main": main, "first_run": first_run}, targets=targets,
             others={"main": main}, inventory=inventory, format=format,
             concurrency=concurrency, attempts=attempts, noop=noop, log_file=log_file,
             strict=strict, timeout=timeout, rerun=rerun, max_fail_percentage=max_fail_percentage)
