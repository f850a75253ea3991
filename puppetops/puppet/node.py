"""What a target is in the Puppet infrastructure, read from its facts and inventory vars.

The plans never hard-code a path or a name: the package layout comes from the ``facts`` plan
(or the ``puppet_layout`` var, for hosts where nothing is installed yet), the certname from
the target (``certname`` var, else its inventory name, which is its FQDN), and every name is
validated before it can reach a remote command.
"""
from __future__ import annotations

import re
from typing import Callable, Iterable

from ..errors import UsageError
from ..target import Target
from . import names
from .csr import KeySpec
from .layout import LAYOUTS, Layout, layout_for
from .vars import VARS

AGENT_SERVICE_STATES = VARS["agent_service"].choices


def validate(targets: Iterable[Target], *checks: Callable[[Target], object]) -> None:
    """Apply ``checks`` (e.g. ``certname``, ``lb_name``) to every target up front, so a bad
    name or var is a usage error before anything runs."""
    for target in targets:
        for check in checks:
            check(target)


def choice(target: Target, var: str) -> str:
    """Inventory var ``var`` of ``target``: one of its choices, its default when unset
    (``vars.VARS``)."""
    spec = VARS[var]
    value = str(target.vars.get(var) or spec.default)
    if value not in spec.choices:
        raise UsageError(f"{target.name}: {var} must be one of {', '.join(spec.choices)}, "
                         f"got {value!r}")
    return value


def layout(target: Target) -> Layout:
    """The target's package layout: var ``puppet_layout`` (debian|aio), else the fact."""
    chosen = target.vars.get("puppet_layout")
    if chosen is not None and chosen not in LAYOUTS:
        raise UsageError(f"{target.name}: puppet_layout must be one of {', '.join(LAYOUTS)}, "
                         f"got {chosen!r}")
    return layout_for({**target.facts, **({"puppet_layout": chosen} if chosen else {})})


def cert_key(target: Target) -> KeySpec:
    """The key of a certificate puppetops requests for ``target``: vars ``cert_key_type``
    (rsa|ec, default rsa as Puppet's), ``cert_key_size`` (RSA bits, default 4096) and
    ``cert_key_curve`` (EC, default prime256v1). An EC key is made in a fraction of an
    RSA-4096 key's time, which counts when many agents enrol at once (docs/benchmarks.md,
    "What changed in enrolment")."""
    return KeySpec(choice(target, "cert_key_type"), int(choice(target, "cert_key_size")),
                   choice(target, "cert_key_curve"))


def certname(target: Target) -> str:
    return names.certname(str(target.vars.get("certname") or target.name))


def lb_name(target: Target) -> str:
    """The name agents use for the compilers (the load balancer's), from var ``lb_name``."""
    value = target.vars.get("lb_name")
    if not value:
        raise UsageError(f"{target.name}: inventory var lb_name (the load balancer's DNS name, "
                         "which goes into every compiler certificate) is not set")
    return names.certname(str(value))


_JVM_FLAG = re.compile(r"^-[A-Za-z0-9:+=._/,%@-]+\Z")


def java_args(target: Target, var: str = "puppetserver_java_args") -> str | None:
    """JVM flags to merge into Puppet Server's JAVA_ARGS (var ``puppetserver_java_args``;
    PuppetDB's: ``puppetdb_java_args``), e.g. ``-Xms512m -Xmx512m`` in the lab; None leaves
    the package's. The defaults file is sourced by a shell, so each flag must be a plain
    ``-option`` (no quotes, $, spaces)."""
    value = target.vars.get(var)
    if not value:
        return None
    flags = str(value).split()
    bad = [f for f in flags if not _JVM_FLAG.match(f)]
    if bad:
        raise UsageError(f"{target.name}: {var} has flags puppetops will not "
                         f"write into a shell-sourced file: {' '.join(bad)}")
    return " ".join(flags)


def puppetdb_java_args(target: Target) -> str | None:
    """JVM flags to merge into PuppetDB's JAVA_ARGS (var ``puppetdb_java_args``)."""
    return java_args(target, "puppetdb_java_args")


def agent_environments(target: Target) -> list[str]:
    """The environments agents compile in through this server (var ``agent_environments``: a
    list or comma-separated names, default production). deploy_code drains a server only
    when one of these is off there: a failed deploy of a branch environment nobody's agents
    use is no reason to take a compiler out of everyone's traffic."""
    value = target.vars.get("agent_environments") or VARS["agent_environments"].default
    items = value.split(",") if isinstance(value, str) else value
    found = [str(e).strip() for e in items] if isinstance(items, (list, tuple)) else []
    if not found or not all(names.ENVIRONMENT.match(e) for e in found):
        raise UsageError(f"{target.name}: agent_environments must list environment names "
                         f"(letters, digits, underscores), got {value!r}")
    return found


def agent_service(target: Target) -> str:
    """The state the agent service is left in (var ``agent_service``, default stopped)."""
    return choice(target, "agent_service")


def r10k_prefix(target: Target) -> bool | str:
    """r10k's source prefix as r10k.yaml says it (var ``r10k_prefix`` on main): False for
    none, True for the source's name, or a prefix of letters, digits and underscores."""
    value = target.vars.get("r10k_prefix")
    if value in (None, False, ""):
        return False
    if value is True or (isinstance(value, str) and names.ENVIRONMENT.match(value)):
        return value
    raise UsageError(f"{target.name}: r10k_prefix must be true (the source's name, "
                     f"{names.R10K_SOURCE}) or letters, digits and underscores, got {value!r}")


def environment_prefix(target: Target) -> str:
    """What r10k puts before ``_branch`` in an environment's name ("" for nothing)."""
    prefix = r10k_prefix(target)
    return names.R10K_SOURCE if prefix is True else prefix or ""
