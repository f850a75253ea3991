"""The code deployers a server can use — r10k (default) or g10k — and what each records.

Both read the same r10k-style ``r10k.yaml`` (the stand-up plans write it) and deploy one
environment per control-repo branch into the layout's environmentpath. After a deploy each
writes a JSON record into the environment: r10k ``.r10k-deploy.json``, g10k
``.g10k-deploy.json`` (checked against /usr/bin/g10k 0.9.7 on the lab's control repo). Both
carry ``signature`` (the control-repo commit), ``deploy_success`` and ``finished_at``, which
is all deploy_code compares; the tool is chosen per server by the inventory var
``code_deployer`` (``r10k`` | ``g10k``), so a fleet can move from one to the other host by host.
Each is a small class behind one interface (``Deployer``), chosen once per server (``of``).

Runs are serialized per host with the same flock the stand-up's r10k step takes, so two
deploys never share a basedir. g10k uses r10k.yaml's cachedir (0.9.7 ignores -cachedir in
config mode) with subfolders of its own (environments/, modules/, forge/), beside r10k's.
"""
from __future__ import annotations

import json
import shlex
from abc import ABC, abstractmethod
from dataclasses import dataclass

from ...puppet import node
from ...puppet.layout import Layout
from ...step import Step
from ...target import Target
from ..packages import Packages
from .r10k import R10kInstalled

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


class Deployer(ABC):
    """A tool that deploys control-repo branches as environments."""

    name: str  # the value of the inventory var code_deployer

    @abstractmethod
    def binary(self, layout: Layout) -> str:
        """Where the tool is on a server of ``layout``."""

    @abstractmethod
    def installed(self) -> Step:
        """The step that installs the tool."""

    @abstractmethod
    def _command(self, layout: Layout, environment: str, branch: str, *, modules: bool,
                 incremental: bool) -> str:
        """The tool's own command line for ``deploy_command``."""

    def record_path(self, layout: Layout, environment: str) -> str:
        return f"{layout.environmentpath}/{environment}/.{self.name}-deploy.json"

    def deploy_command(self, layout: Layout, environment: str, branch: str, *, modules: bool,
                       incremental: bool) -> str:
        """The command deploying ``environment`` from ``branch`` (both validated; they differ
        under r10k's source prefix), under the deploy lock."""
        command = self._command(layout, environment, branch, modules=modules,
                                incremental=incremental)
        return f"flock {LOCK} {command}"


class R10k(Deployer):
    """r10k, as the stand-up installs it. It deploys Puppetfile modules only with ``-m`` (and
    then ``--incremental`` limits it to changed or floating modules); without ``-m`` only on
    an environment's first deploy."""

    name = "r10k"

    def binary(self, layout: Layout) -> str:
        return layout.r10k

    def installed(self) -> Step:
        return R10kInstalled()

    def _command(self, layout: Layout, environment: str, branch: str, *, modules: bool,
                 incremental: bool) -> str:
        """r10k takes the environment's name (the prefix included)."""
        flags = [*(["-m"] if modules or incremental else []),
                 *(["--incremental"] if incremental else [])]
        return " ".join([shlex.quote(self.binary(layout)), "deploy", "environment", environment,
                         *flags])


class G10k(Deployer):
    """g10k, from the OS package (Debian ships it). It always resolves the Puppetfile and has
    no incremental mode: both flags are moot."""

    name = "g10k"

    def binary(self, layout: Layout) -> str:
        return G10K

    def installed(self) -> Step:
        return Packages("g10k")

    def _command(self, layout: Layout, environment: str, branch: str, *, modules: bool,
                 incremental: bool) -> str:
        """g10k takes the branch (it puts the source's prefix before it itself)."""
        return (f"{shlex.quote(self.binary(layout))} -config {shlex.quote(layout.r10k_config)} "
                f"-branch {branch} -quiet")


DEPLOYERS: dict[str, Deployer] = {d.name: d for d in (R10k(), G10k())}


def of(target: Target) -> Deployer:
    """The server's deployer (var ``code_deployer``: r10k, the default, or g10k)."""
    return DEPLOYERS[node.choice(target, "code_deployer")]


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
