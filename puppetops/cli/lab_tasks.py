"""Invoke tasks for the lab: lab-setup, lab-up, lab-down, lab-status.

Thin wrappers over ``puppetops.lab``; a LabError becomes exit code 2 with its message only.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Callable, Optional

from invoke import task
from invoke.exceptions import Exit
from tabulate import tabulate

from ..lab import (DEFAULT_BRIDGE, DEFAULT_STATE_DIR, DEFAULT_SUBNET, Lab, LabError, LabInfo,
                   lab_setup as _lab_setup, write_inventory)
from ..params import Count, Param, describe, signature_params
from .parsing import PuppetopsTask, TypedTask, task_doc


@dataclass(frozen=True)
class LabShape:
    """Which lab, and how many hosts: the options of lab-up and demo, declared once.

    Args:
        compilers: number of compilers
        agents: number of agents
        state_dir: lab state directory
        subnet: lab IPv4 subnet, a /24
        bridge: lab bridge name; also the prefix of its netns and veth names
        write_inventory: also write the lab's inventory to this path (e.g. inventory.yaml)
    """

    compilers: Count = 2
    agents: Count = 2
    state_dir: str = DEFAULT_STATE_DIR
    subnet: str = DEFAULT_SUBNET
    bridge: str = DEFAULT_BRIDGE
    write_inventory: Optional[str] = None

    def up(self) -> LabInfo:
        """The lab up (``Lab.up``), its inventory also written where asked; ``LabError``."""
        info = Lab(self.state_dir, self.subnet, self.bridge).up(self.compilers, self.agents)
        if self.write_inventory:
            write_inventory(self.write_inventory, str(info.state_dir), self.compilers,
                            self.agents, self.subnet)
        return info


LAB_OPTIONS = signature_params(LabShape, skip=0)
STATE_DIR = next(p for p in LAB_OPTIONS if p.name == "state_dir")


def lab_task(*params: Param) -> Callable[[Callable[..., Any]], TypedTask]:
    """Make ``fn(c, **typed)`` a command taking ``params`` (no run options: it runs no plan)."""
    def make(fn: Callable[..., Any]) -> TypedTask:
        made = TypedTask(fn, params, run_options=False, name=fn.__name__,
                         doc=task_doc(describe(fn)))
        made.__module__ = fn.__module__
        return made
    return make


@task(klass=PuppetopsTask)
def lab_setup(c):
    """Install the Debian packages the lab and the Puppet stack need (no-op when all are there)."""
    try:
        installed = _lab_setup()
    except LabError as exc:
        raise Exit(str(exc), code=2) from None
    print(f"installed: {' '.join(installed)}" if installed else "all lab packages already installed")


@lab_task(*LAB_OPTIONS)
def lab_up(c, **shape: Any):
    """Bring the lab up (no-op if it is up and healthy; rebuilt if it crashed)."""
    lab = LabShape(**shape)
    start = time.monotonic()
    try:
        info = lab.up()
    except LabError as exc:
        raise Exit(str(exc), code=2) from None
    print(f"lab up: {len(info.hosts)} hosts on {info.bridge} ({info.topology.subnet}) "
          f"in {time.monotonic() - start:.1f}s")
    print(f"inventory: {info.inventory}"
          + (f" (and {lab.write_inventory})" if lab.write_inventory else ""))


@lab_task(STATE_DIR)
def lab_down(c, state_dir: str):
    """Stop the lab's processes and remove its namespaces, bridge, mounts and host folders."""
    start = time.monotonic()
    try:
        Lab(state_dir).down()
    except LabError as exc:
        raise Exit(str(exc), code=2) from None
    print(f"lab down in {time.monotonic() - start:.1f}s")


@lab_task(STATE_DIR)
def lab_status(c, state_dir: str):
    """Show each lab host: address, sshd, Puppet services running inside (no SSH needed)."""
    try:
        hosts = Lab(state_dir).status()
    except LabError as exc:
        raise Exit(str(exc), code=2) from None
    if not hosts:
        print(f"no lab in {state_dir}")
        return
    rows = [(h.name, h.address, f"up (pid {h.sshd_pid})" if h.sshd else "down", ", ".join(h.services) or "-")
            for h in hosts]
    print(tabulate(rows, headers=("host", "address", "sshd", "puppet services")))
