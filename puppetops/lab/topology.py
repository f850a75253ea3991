"""Which hosts a lab has, their names and their fixed addresses.

Addresses are a pure function of (subnet, compilers, agents), so the same lab always gets the
same addresses and the inventory committed in the repo stays valid across rebuilds:

    .1            the controller (this machine), on the lab bridge
    .11           main
    .12 ...       compiler1..N
    next          lb
    next x1 ...   agent1..N, from the next address ending in 1 (.21 for the default lab)

The default lab is therefore main .11, compiler1 .12, compiler2 .13, lb .14, agent1 .21,
agent2 .22 (the addresses the shared lab recipe verified). 200 hosts end at .219 at worst, so
every topology the lab accepts fits in a /24.
"""
from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from .errors import LabError

DOMAIN = "puppetops.test"
DEFAULT_SUBNET = "10.77.0.0/24"
MAX_HOSTS = 200
CONTROLLER_SHORT = "control"


@dataclass(frozen=True)
class LabHost:
    """One lab host. ``fqdn`` is its Puppet certname and inventory target name."""

    short: str
    fqdn: str
    address: str
    group: str  # inventory group: main, compilers, loadbalancers or agents
    offset: int  # address offset in the subnet; also keeps interface names unique and short

    @property
    def alias(self) -> str | None:
        """Inventory alias; the main host needs none because the group ``main`` selects it."""
        return None if self.group == "main" else self.short


@dataclass(frozen=True)
class Topology:
    """The hosts of one lab plus the controller's address on the lab bridge."""

    subnet: ipaddress.IPv4Network
    domain: str
    compilers: int
    agents: int
    hosts: tuple[LabHost, ...]

    @property
    def controller(self) -> str:
        return str(self.subnet.network_address + 1)

    @property
    def controller_fqdn(self) -> str:
        return f"{CONTROLLER_SHORT}.{self.domain}"

    def host(self, name: str) -> LabHost:
        """Look a host up by short name, FQDN or address."""
        for host in self.hosts:
            if name in (host.short, host.fqdn, host.address):
                return host
        raise LabError(f"no lab host named {name!r}; hosts: {', '.join(h.short for h in self.hosts)}")

    def hosts_file(self) -> str:
        """/etc/hosts for every lab host: ``IP FQDN short``, FQDN first so ``hostname -f`` gives it."""
        lines = [
            "# puppetops lab (generated): every lab host and the controller",
            "127.0.0.1\tlocalhost",
            "::1\tlocalhost ip6-localhost ip6-loopback",
            f"{self.controller}\t{self.controller_fqdn} {CONTROLLER_SHORT}",
        ]
        lines += [f"{h.address}\t{h.fqdn} {h.short}" for h in self.hosts]
        return "\n".join(lines) + "\n"


def default_topology(compilers: int = 2, agents: int = 2, subnet: str = DEFAULT_SUBNET,
                     domain: str = DOMAIN) -> Topology:
    """main + N compilers + lb + N agents, with the addresses described in the module docstring."""
    if compilers < 1:
        raise LabError(f"a lab needs at least 1 compiler (got {compilers})")
    if agents < 0:
        raise LabError(f"agents cannot be negative (got {agents})")
    if compilers + agents + 2 > MAX_HOSTS:
        raise LabError(f"{compilers} compilers + {agents} agents + main + lb = {compilers + agents + 2} "
                       f"hosts; the lab supports at most {MAX_HOSTS}")
    try:
        net = ipaddress.IPv4Network(subnet)
    except ValueError as exc:
        raise LabError(f"invalid lab subnet {subnet!r}: {exc} (use e.g. {DEFAULT_SUBNET})") from None

    plan = [("main", "main", 11)]
    plan += [(f"compiler{i}", "compilers", 11 + i) for i in range(1, compilers + 1)]
    lb_offset = 12 + compilers
    plan.append(("lb", "loadbalancers", lb_offset))
    first_agent = (lb_offset // 10 + 1) * 10 + 1
    plan += [(f"agent{i}", "agents", first_agent + i - 1) for i in range(1, agents + 1)]

    last = plan[-1][2]
    if last >= net.num_addresses - 1:
        raise LabError(f"subnet {net} is too small for {len(plan)} hosts: the last one needs offset "
                       f"{last}; use a /24")
    hosts = tuple(LabHost(short, f"{short}.{domain}", str(net.network_address + off), group, off)
                  for short, group, off in plan)
    return Topology(net, domain, compilers, agents, hosts)
