"""Checks on a host before it gets a certificate."""
from __future__ import annotations

import shlex

from ..errors import StepError
from ..puppet.node import certname
from ..step import StepContext


def preflight(ctx: StepContext) -> str:
    """The host's FQDN resolves and is its certname (peadm's precheck): a certificate for
    one name on a host that calls itself another breaks every TLS connection later."""
    name = certname(ctx.target)
    fqdn = ctx.run("hostname -f").stdout.strip()
    if fqdn != name:
        raise StepError(f"`hostname -f` says {fqdn!r} but the certname is {name!r}: fix the "
                        "host name, or set the inventory var certname")
    if not ctx.test(f"getent hosts {shlex.quote(name)} >/dev/null"):
        raise StepError(f"{name} does not resolve on the host (DNS or /etc/hosts)")
    return fqdn
