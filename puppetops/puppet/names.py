"""Names that end up in remote commands and in certificates: certnames and environments.

Every certname a plan sends to a host (``puppetserver ca sign --certname``, puppet.conf,
HAProxy server lines, authorized_keys comments) goes through ``certname`` first. The rule is
deliberately stricter than Puppet's own (which allows upper case and underscores): lowercase
DNS labels only, so a name can never carry shell, HOCON or YAML syntax, an option (``--all``)
or a wildcard, even where quoting would be forgotten.
"""
from __future__ import annotations

import re
from typing import Iterable

from ..errors import UsageError

_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
CERTNAME = re.compile(rf"^{_LABEL}(?:\.{_LABEL})*\Z")
# r10k turns branch names into environment names and accepts only these (r10k's own check).
# \Z, not $: `$` also matches before a trailing newline, which would let "production\n" through.
# At most 255 characters: the longest directory name.
ENVIRONMENT = re.compile(r"^[a-zA-Z0-9_]{1,255}\Z")


def certname(name: str) -> str:
    """``name`` if it is a valid certname (lowercase letters, digits, dots, dashes); else
    ``UsageError``."""
    if not isinstance(name, str) or len(name) > 253 or not CERTNAME.match(name):
        raise UsageError(f"invalid certname {name!r}: use lowercase letters, digits, dots and "
                         "dashes (a DNS name)")
    return name


def certnames(names: list[str] | tuple[str, ...]) -> list[str]:
    return [certname(n) for n in names]


def environment(name: str) -> str:
    """``name`` if r10k would accept it as an environment name; else ``UsageError``."""
    if not isinstance(name, str) or not ENVIRONMENT.match(name):
        raise UsageError(f"invalid environment name {name!r}: r10k allows only letters, digits "
                         "and underscores (at most 255)")
    return name


# The name of the one source in the r10k.yaml puppetops writes: ``prefix: true`` prefixes
# environments with it.
R10K_SOURCE = "puppet"


def prefixed(branch: str, prefix: str = "") -> str:
    """The environment r10k deploys ``branch`` to under the source prefix ``prefix`` (""
    for none): ``PREFIX_branch`` (r10k's Environment::Name#dirname). r10k's rule applies to
    the whole name: ``UsageError`` unless it passes."""
    return environment(f"{prefix}_{branch}" if prefix else branch)


def branch_of(env: str, prefix: str = "") -> str:
    """The branch environment ``env`` (already a valid name) comes from under the source
    prefix ``prefix``; ``UsageError`` when it does not carry that prefix."""
    if not prefix:
        return env
    if not env.startswith(f"{prefix}_") or env == f"{prefix}_":
        raise UsageError(f"environment {env!r} is not {prefix}_<branch>: r10k's source prefix "
                         f"(inventory var r10k_prefix on main) is {prefix!r}")
    return env[len(prefix) + 1:]


def environments_of(branches: Iterable[str], prefix: str = "") -> dict[str, str]:
    """Environment → branch, for each of ``branches`` whose environment name (under
    ``prefix``) r10k accepts."""
    found = {}
    for branch in branches:
        name = f"{prefix}_{branch}" if prefix else branch
        if ENVIRONMENT.match(name):
            found[name] = branch
    return found
