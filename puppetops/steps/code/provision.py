"""Deploy the control repo with r10k on a set of servers (main, compilers): the multi-host
part — each server's deploy key must be authorized on main, and main's host key known to
each server — before r10k.yaml and the deploy itself.

The control repo is on main (created by ``setup_control_repo``) unless the inventory var
``control_repo`` names an external git URL; then access to it is the operator's business
and only r10k.yaml and the deploy are managed here.
"""
from __future__ import annotations

from ...flow import Cohort
from ...puppet import node
from ...puppet.vars import VARS
from ...target import Target
from .r10k import (AuthorizedDeployKeys, DeployKey, KnownHost, R10kConfig, R10kDeploy,
                   R10kInstalled, SshIdentity, host_keys, public_key, repo_path)

DEFAULT_REPO = VARS["control_repo_path"].default


def repo_on_main(main: Target) -> str | None:
    """The control repo's path on main, or None when ``control_repo`` is an external URL."""
    return None if main.vars.get("control_repo") else repo_path(
        str(main.vars.get("control_repo_path") or DEFAULT_REPO))


def remote(main: Target) -> str:
    """The git URL every server's r10k fetches from."""
    path = repo_on_main(main)
    return str(main.vars["control_repo"]) if path is None else f"root@{node.certname(main)}:{path}"


def deploy(cohort: Cohort, main: Target, branch: str = "production") -> None:
    """Branch ``branch`` deployed by r10k on every live member of ``cohort``, as its
    environment under main's source prefix (var ``r10k_prefix``)."""
    run, url, path = cohort.run, remote(main), repo_on_main(main)
    cohort.step(R10kInstalled())
    if path is not None:
        cohort.step(DeployKey())
        keys = cohort.each("read deploy key", public_key)
        servers = {t.name: t for t in cohort.members}
        authorized = {node.certname(servers[r.target]): r.value for r in keys.ok_set if r.value}
        if authorized:
            run.step(AuthorizedDeployKeys(authorized, path), [main])
        known = run.each("read host keys", host_keys, [main])[0].value
        cohort.pipeline([KnownHost(node.certname(main), known), SshIdentity(node.certname(main))])
    cohort.pipeline([R10kConfig(url, node.r10k_prefix(main)),
                     R10kDeploy(branch, url, node.environment_prefix(main))])
