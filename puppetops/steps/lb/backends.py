"""The backend of an LB host, chosen once from its inventory var ``lb_backend``."""
from __future__ import annotations

from ...puppet import node
from ...target import Target
from .backend import Backend
from .haproxy import HAProxy
from .nginx import Nginx

BACKENDS: dict[str, Backend] = {b.name: b for b in (HAProxy(), Nginx())}


def of(lb: Target) -> Backend:
    """The backend ``lb`` runs (var ``lb_backend``: haproxy, the default — active health
    checks and a runtime API — or nginx; choices and default from ``puppet.vars``)."""
    return BACKENDS[node.choice(lb, "lb_backend")]


def name(lb: Target) -> str:
    """The name of ``lb``'s backend; for ``node.validate``, a usage error when unknown."""
    return of(lb).name
