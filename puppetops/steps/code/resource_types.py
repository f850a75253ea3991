"""Environment isolation of custom resource types: ``puppet generate types`` after a deploy.

Puppet Server loads a module's Ruby resource types (``lib/puppet/type/*.rb``) once per JRuby,
for every environment: two environments with different versions of a type leak into each
other's catalogs on the same server. ``puppet generate types --environment ENV`` writes Puppet
code metadata for them into ``ENV/.resource_types/``, which the compiler reads per environment
instead (r10k's ``generate_types``, Puppet's "environment isolation"). It must run after every
deploy and before the flush; a marker (one per environment, outside the environment, so a
deployer never purges or deploys it) holds the deploy it was generated for, so a deploy whose
generation failed generates again on the next run even though its commit is unchanged.
"""
from __future__ import annotations

import shlex

from ...puppet.layout import Layout
from .deployers import LOCK

MARKERS = "/var/lib/puppetops/resource-types"


def marker(environment: str) -> str:
    """Where the stamp of the deploy whose types were generated is kept (see Deployed.stamp)."""
    return f"{MARKERS}/{environment}"


def generate_command(layout: Layout, environment: str, stamp: str) -> str:
    """``puppet generate types`` for ``environment`` (validated), under the deployers' lock so
    it never reads a half-deployed environment; on success the marker gets ``stamp``."""
    path, tmp = shlex.quote(marker(environment)), shlex.quote(marker(environment) + ".tmp")
    return (f"flock {LOCK} {shlex.quote(layout.puppet)} generate types --environment "
            f"{environment} --color false && mkdir -p {MARKERS} && "
            f"printf '%s\\n' {shlex.quote(stamp)} > {tmp} && mv -f {tmp} {path}")
