"""Invoke tasks for the lab: lab-setup, lab-up, lab-down, lab-status.

Thin wrappers over ``puppetops.lab``; a LabError becomes exit code 2 with its message only.
"""
from __future__ import annotations

import time
from typing import Optional

from invoke import task
from invoke.exceptions import Exit
from tabulate import tabulate

from ..lab import (DEFAULT_BRIDGE, DEFAULT_STATE_DIR, DEFAULT_SUBNET, Lab, LabError, lab_setup as _lab_setup,
                   write_inventory)
from ..params import Count
from .parsing import PuppetopsTask, typed_task

_STATE_HELP = f"lab state directory (default {DEFAULT_STATE_DIR})"


@task(klass=PuppetopsTask)
def lab_setup(c):
    """Install the Debian packages the lab and the Puppet stack need (no-op when all are there)."""
    try:
        installed = _lab_setup()
    except LabError as exc:
        raise Exit(str(exc), code=2) from None
    print(f"installed: {' '.join(installed)}" if installed else "all lab packages already installed")


@typed_task(run_options=False)
def lab_up(c, compilers: Count = 2, agents: Count = 2, state_dir: str = DEFAULT_STATE_DIR,
           subnet: str = DEFAULT_SUBNET, bridge: str = DEFAULT_BRIDGE,
           inventory: Optional[str] = None):
    """Bring the lab up (no-op if it is up and healthy; rebuilt if it crashed).

    Args:
        compilers: number of compilers
        agents: number of agents
        state_dir: lab state directory
        subnet: lab IPv4 subnet, a /24
        bridge: lab bridge name; also the prefix of its netns and veth names
        inventory: also write the lab's inventory to this path (e.g. inventory.yaml)
    """
    start = time.monotonic()
    try:
        info = Lab(state_dir, subnet, bridge).up(compilers, agents)
        if inventory:
            write_inventory(inventory, str(info.state_dir), compilers, agents, subnet)
    except LabError as exc:
        raise Exit(str(exc), code=2) from None
    print(f"lab up: {len(info.hosts)} hosts on {info.bridge} ({info.topology.subnet}) "
          f"in {time.monotonic() - start:.1f}s")
    print(f"inventory: {info.inventory}" + (f" (and {inventory})" if inventory else ""))


@task(klass=PuppetopsTask, help={"state_dir": _STATE_HELP})
def lab_down(c, state_dir=DEFAULT_STATE_DIR):
    """Stop the lab's processes and remove its namespaces, bridge, mounts and host folders."""
    start = time.monotonic()
    try:
        Lab(state_dir).down()
    except LabError as exc:
        raise Exit(str(exc), code=2) from None
    print(f"lab down in {time.monotonic() - start:.1f}s")


@task(klass=PuppetopsTask, help={"state_dir": _STATE_HELP})
def lab_status(c, state_dir=DEFAULT_STATE_DIR):
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
