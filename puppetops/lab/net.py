"""The lab's network objects in the root namespace: one bridge, and per host a netns + veth.

Thin wrappers around ``ip`` so every failure becomes a LabError carrying ip's own message.
Existence checks read /sys/class/net and /run/netns directly: they are called for every host and
a process per check would dominate the bring-up of a 200-host lab.
"""
from __future__ import annotations

import ipaddress
import os
import subprocess

from .errors import LabError


def ip(*args: str, stdin: str | None = None) -> str:
    proc = subprocess.run(["ip", *args], input=stdin, capture_output=True, text=True)
    if proc.returncode:
        shown = " ".join(args) if stdin is None else f"{' '.join(args)} (batch)"
        raise LabError(f"`ip {shown}` failed: {proc.stderr.strip() or proc.stdout.strip()}")
    return proc.stdout


def link_exists(name: str) -> bool:
    return os.path.exists(f"/sys/class/net/{name}")


def netns_exists(name: str) -> bool:
    return os.path.exists(f"/run/netns/{name}")


def ipv4_addresses() -> list[tuple[str, ipaddress.IPv4Interface]]:
    """(interface, address/prefix) of every IPv4 address in the root namespace (``ip -o -4 addr``)."""
    found = []
    for line in ip("-o", "-4", "addr", "show").splitlines():
        fields = line.split()
        found.append((fields[1], ipaddress.IPv4Interface(fields[3])))
    return found


def subnet_users(subnet: ipaddress.IPv4Network) -> list[str]:
    """``interface address`` for every address overlapping ``subnet``."""
    return [f"{ifname} {addr}" for ifname, addr in ipv4_addresses() if addr.network.overlaps(subnet)]


def add_bridge(name: str, address: str, prefixlen: int) -> None:
    ip("-batch", "-", stdin=f"link add {name} type bridge\n"
                            f"addr add {address}/{prefixlen} dev {name}\n"
                            f"link set {name} up\n")


def add_host_links(links: list[tuple[str, str]], bridge: str) -> None:
    """Per ``(netns, veth)``: a netns plus a veth pair, ``veth`` on the bridge, its peer ``eth0``
    inside the netns. One ``ip -batch`` for all hosts: a single process instead of 2 per host,
    and no race between concurrent first ``ip netns add`` calls setting up /run/netns.
    The addresses are configured from inside (host-init.sh), which runs per host in parallel.
    """
    batch = "".join(f"netns add {netns}\n"
                    f"link add {veth} up master {bridge} type veth peer name eth0 netns {netns}\n"
                    for netns, veth in links)
    ip("-batch", "-", stdin=batch)


def delete_netns(name: str) -> None:
    """Remove a netns name; its veth pair goes with it once no process holds the namespace."""
    if netns_exists(name):
        ip("netns", "delete", name)


def delete_link(name: str) -> None:
    if link_exists(name):
        ip("link", "delete", name)
