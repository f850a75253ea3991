"""Names that end up in remote commands and in certificates: certnames and environments.

Every certname a plan sends to a host (``puppetserver ca sign --certname``, puppet.conf,
HAProxy server lines, authorized_keys comments) goes through ``certname`` first. The rule is
deliberately stricter than Puppet's own (which allows upper case and underscores): lowercase
DNS labels only, so a name can never carry shell, HOCON or YAML syntax, an option (``--all``)
or a wildcard, even where quoting would be forgotten.
"""
from __future__ import annotations

import re

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
