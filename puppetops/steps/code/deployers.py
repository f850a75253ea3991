"""The code deployers a server can use — r10k (default) or g10k — and what each records.

Both read the same r10k-style ``r10k.yaml`` (the stand-up plans write it) and deploy one
environment per control-repo branch into the layout's environmentpath. After a deploy each
writes a JSON record into the environment: r10k ``.r10k-deploy.json``, g10k
``.g10k-deploy.json`` (checked against /usr/bin/g10k 0.9.7 on the lab's control repo). Both
carry ``signature`` (the control-repo commit), ``deploy_success`` and ``finished_at``, which
is all deploy_code compares; the tool is chosen per server by the inventory var
``code_deployer`` (``r10k`` | ``g10k``), so a fleet can move from one to the other host by host.

Runs are serialized per host with the same flock the stand-up's r10k step takes, so two
deploys never share a basedir. g10k uses r10k.yaml's cachedir (0.9.7 ignores -cachedir in
config mode) with subfolders of its own (environments/, modules/, forge/), beside r10k's.
"""
from __future__ import annotations

import json
import shlex
from dataclasses import dataclass

from ...puppet import node
from ...puppet.layout import Layout
from ...target import Target

DEPLOYERS = ("r10k", "g10k")
LOCK = "/run/puppetops-r10k.lock"  # shared with r10k.R10kDeploy
G10K = "/usr/bin/g10k"


@dataclass(frozen=True)
class Deployed:
    """What a deploy record says about one environment on one server."""

    signature: str | None
    success: bool
    finished_at: str = ""

    @property
    def stamp(self) -> str:
        """Identifies one deploy run: a new run of the tool gives a new stamp."""
        return f"{self.signature} {self.finished_at}"


def deployer(target: Target) -> str:
    return node.choice(target, "code_deployer", DEPLOYERS, "r10k")


def binary(tool: str, layout: Layout) -> str:
    return layout.r10k if tool == "r10k" else G10K


def record_path(tool: str, layout: Layout, environment: str) -> str:
    return f"{layout.environmentpath}/{environment}/.{tool}-deploy.json"


def parse_record(text: str | None) -> Deployed | None:
    """The record's content, or None when there is none (never deployed) or it is unreadable."""
    try:
        data = json.loads(text) if text else None
    except ValueError:
        return None
    if not isinstance(data, dict):
        return None
    signature = data.get("signature")
    return Deployed(str(signature) if signature else None, data.get("deploy_success") is True,
                    str(data.get("finished_at") or ""))


def deploy_command(tool: str, layout: Layout, environment: str, *, modules: bool,
                   incremental: bool) -> str:
    """The command deploying ``environment`` (already validated) with ``tool``.

    r10k deploys Puppetfile modules only with ``-m`` (and then ``--incremental`` limits it to
    changed or floating modules); without ``-m`` only on an environment's first deploy.
    g10k always resolves the Puppetfile and has no incremental mode: both flags are moot.
    """
    exe = shlex.quote(binary(tool, layout))
    if tool == "r10k":
        flags = [*(["-m"] if modules or incremental else []),
                 *(["--incremental"] if incremental else [])]
        command = " ".join([exe, "deploy", "environment", environment, *flags])
    else:
        command = f"{exe} -config {shlex.quote(layout.r10k_config)} -branch {environment} -quiet"
    return f"flock {LOCK} {command}"
