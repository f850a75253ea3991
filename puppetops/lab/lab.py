"""``Lab``: bring a lab up, report on it, tear it down.

Per host the lab owns: a netns ``BRIDGE-SHORT`` with a veth ``BRIDGEvOFFSET`` on the bridge, a
folder ``STATE/SHORT`` (overlay upper/work/merged + init.log), and two processes: the ``unshare``
launcher and the host's PID 1, sshd. Everything is recorded in ``STATE/lab.json`` (see state.py)
before it is created, and removed only if both its name and that record say it is the lab's.

Generated for users in STATE: ``inventory.yaml``, ``known_hosts`` (every host's key under its
address, FQDN and short name), ``hosts`` (the /etc/hosts every lab host has) and the client key
``id_ed25519``, which is kept across rebuilds so configured paths and keys stay valid.
"""
from __future__ import annotations

import fcntl
import os
import re
import resource
import shlex
import shutil
import socket
import subprocess
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from .. import procs
from ..polling import wait_while
from . import net, rootfs
from .errors import LabError
from .inventory import DEFAULT_STATE_DIR, atomic_write, render_inventory, render_known_hosts
from .state import STATE_FILE, HostRecord, LabRecord
from .topology import DEFAULT_SUBNET, DOMAIN, LabHost, Topology, default_topology

HOST_INIT = Path(__file__).with_name("host-init.sh")
# The first `ip netns add` on a machine bind-mounts /run/netns onto itself (creating the dir if
# needed) and nothing ever undoes it. A lab that causes this leaves this marker, shared by all
# labs, so that whichever lab goes down last restores the machine ("dir": the dir was new too).
RUN_NETNS, RUN_NETNS_MARKER = "/run/netns", Path("/run/puppetops-lab-netns-mount")
DEFAULT_BRIDGE = "plbr0"
_TOOLS = ("ip", "unshare", "setsid", "chroot", "mount", "hostname", "ssh-keygen", "/usr/sbin/sshd")
_WORKERS = max(4, (os.cpu_count() or 1) * 4)  # keygen/file writes: mostly waiting on processes/IO


@dataclass(frozen=True)
class LabInfo:
    """Where a running lab's files are, and its hosts."""

    state_dir: Path
    inventory: Path
    known_hosts: Path
    private_key: Path
    bridge: str
    topology: Topology

    @property
    def hosts(self) -> tuple[LabHost, ...]:
        return self.topology.hosts

    @property
    def controller(self) -> str:
        return self.topology.controller

    def host(self, name: str) -> LabHost:
        return self.topology.host(name)

    def ssh_command(self, name: str, command: str) -> list[str]:
        """OpenSSH client argv running ``command`` on host ``name`` as root, host key checking on."""
        host = self.host(name)
        return ["ssh", "-F", "/dev/null", "-i", str(self.private_key), "-o", "BatchMode=yes",
                "-o", "StrictHostKeyChecking=yes", "-o", f"UserKnownHostsFile={self.known_hosts}",
                "-o", "ConnectTimeout=10", f"root@{host.address}", command]


@dataclass(frozen=True)
class HostStatus:
    """One host as seen from the controller, without SSH."""

    name: str  # FQDN
    short: str
    address: str
    sshd: bool  # recorded sshd alive and answering on ADDRESS:22
    sshd_pid: int | None
    services: tuple[str, ...]  # Puppet-stack daemons found running inside
    rss_kib: int  # resident memory of all the host's processes
    pids: tuple[int, ...]


class Lab:
    """A lab of real hosts on this machine: netns + veth on a bridge, overlay root, own sshd.

    ``state_dir``, ``subnet`` and ``bridge`` must differ between labs that run at the same time.
    """

    def __init__(self, state_dir: str | os.PathLike = DEFAULT_STATE_DIR, subnet: str = DEFAULT_SUBNET,
                 bridge: str = DEFAULT_BRIDGE, domain: str = DOMAIN):
        # veth names are BRIDGE + "v" + offset (<= 3 digits) and must fit IFNAMSIZ (15 chars);
        # no "-" so one lab's netns prefix "BRIDGE-" is never a prefix of another lab's
        if not (bridge.isascii() and bridge.isalnum() and bridge[:1].isalpha() and len(bridge) <= 11):
            raise LabError(f"invalid bridge name {bridge!r}: use 1-11 letters/digits, starting with a letter")
        self.state_dir = Path(state_dir).absolute()
        self.subnet, self.bridge, self.domain = subnet, bridge, domain

    # public API ---------------------------------------------------------------------------------

    def up(self, compilers: int = 2, agents: int = 2) -> LabInfo:
        """Bring the lab up; a no-op if it is up and healthy, a rebuild if it crashed."""
        topology = default_topology(compilers, agents, self.subnet, self.domain)
        _preflight()
        with self._locked():
            record = LabRecord.load(self.state_dir)
            if record is not None:
                if self._healthy(record):
                    wanted = (self.bridge, str(topology.subnet), self.domain, compilers, agents)
                    have = (record.bridge, record.subnet, record.domain, record.compilers, record.agents)
                    if have != wanted:
                        raise LabError(
                            f"the lab in {self.state_dir} is up with bridge {record.bridge}, subnet "
                            f"{record.subnet}, {record.compilers} compilers, {record.agents} agents; "
                            "take it down first to change it")
                    return self._info(topology)
                self._teardown(record)  # crashed or half-built: remove the lab's leftovers
            self._check_free(topology)
            return self._build(topology)

    def down(self) -> None:
        """Stop every lab process, delete namespaces, veths, bridge and host folders; then verify."""
        _require_root()
        if not (self.state_dir / STATE_FILE).exists():
            return
        with self._locked():
            record = LabRecord.load(self.state_dir)
            if record is not None:
                self._teardown(record)

    def is_up(self) -> bool:
        """True if the recorded lab is complete and every sshd answers."""
        _require_root()
        record = LabRecord.load(self.state_dir)
        return record is not None and self._healthy(record)

    def status(self) -> list[HostStatus]:
        """Per recorded host: sshd state, Puppet services and memory, from /proc and a TCP probe."""
        _require_root()  # the state dir is root's, and other processes' namespaces are only visible to root
        record = LabRecord.load(self.state_dir)
        if record is None:
            return []
        topology = _topology_of(record)
        inodes = {h.short: procs.netns_inode(h.netns) for h in record.hosts}
        by_netns = procs.pids_in_netns(i for i in inodes.values() if i is not None)
        alive = {h.short: h.sshd is not None and h.sshd.alive() for h in record.hosts}
        bridge_up = net.link_exists(record.bridge)
        probe = [topology.host(s).address for s, ok in alive.items() if ok and bridge_up]
        answering = _ssh_banners(probe)
        result = []
        for rec in record.hosts:
            host = topology.host(rec.short)
            pids = tuple(sorted(by_netns.get(inodes[rec.short], ())))
            services = {service_of(procs.cmdline(p)) for p in pids} - {None}
            result.append(HostStatus(
                host.fqdn, host.short, host.address, alive[host.short] and host.address in answering,
                rec.sshd.pid if alive[host.short] else None, tuple(sorted(services)),
                sum(procs.rss_kib(p) for p in pids), pids))
        return result

    # bring-up -----------------------------------------------------------------------------------

    def _build(self, topology: Topology) -> LabInfo:
        record = LabRecord(self.bridge, str(topology.subnet), self.domain, topology.compilers, topology.agents,
                           hosts=[HostRecord(h.short, self._netns(h), self._veth(h)) for h in topology.hosts])
        record.save(self.state_dir)  # intent first: down() can clean up whatever follows
        try:
            client_pubkey = self._client_key()
            with ThreadPoolExecutor(min(_WORKERS, len(topology.hosts))) as pool:
                host_keys = dict(pool.map(self._prepare_host_dir, topology.hosts))
                known_hosts = render_known_hosts(topology, host_keys)
                hosts_file = topology.hosts_file()
                list(pool.map(lambda h: rootfs.populate(self._upper(h), h, hosts_file, known_hosts,
                                                        client_pubkey), topology.hosts))
            if not procs.is_mount_point(RUN_NETNS) and not RUN_NETNS_MARKER.exists():
                RUN_NETNS_MARKER.write_text("mount\n" if os.path.isdir(RUN_NETNS) else "dir\n")
            net.add_bridge(self.bridge, topology.controller, topology.subnet.prefixlen)
            net.add_host_links([(self._netns(h), self._veth(h)) for h in topology.hosts], self.bridge)
            self._launch(topology, record)
            self._wait_for_sshd(topology, record)
            atomic_write(self.state_dir / "known_hosts", known_hosts)
            atomic_write(self.state_dir / "hosts", hosts_file)
            atomic_write(self.state_dir / "inventory.yaml", render_inventory(topology, str(self.state_dir)))
            record.phase = "up"
            record.save(self.state_dir)
        except BaseException as exc:
            try:
                self._teardown(record)
            except LabError as cleanup:
                raise LabError(f"{exc}\n(cleaning up after that failed too: {cleanup}; run down())") from exc
            raise
        return self._info(topology)

    def _client_key(self) -> str:
        """The lab's client key pair, generated once and kept across rebuilds."""
        key = self.state_dir / "id_ed25519"
        if not key.exists():
            proc = subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "puppetops-lab",
                                   "-f", str(key)], capture_output=True, text=True)
            if proc.returncode:
                raise LabError(f"ssh-keygen for the lab client key failed: {proc.stderr.strip()}")
        return key.with_suffix(".pub").read_text()

    def _prepare_host_dir(self, host: LabHost) -> tuple[str, str]:
        """Fresh STATE/SHORT/{upper,work,merged} and host key; returns (short, public key)."""
        folder = self.state_dir / host.short
        shutil.rmtree(folder, ignore_errors=True)
        for sub in ("upper", "work", "merged"):
            (folder / sub).mkdir(parents=True)
        return host.short, rootfs.generate_host_key(folder / "upper", host)

    def _launch(self, topology: Topology, record: LabRecord) -> None:
        """Start every host's init in the background from one shell (setsid … & per host).

        ``setsid`` detaches the launcher from us; it is reparented to init when the shell exits,
        so nothing of the lab depends on this Python process staying alive.
        """
        lines = []
        for host in topology.hosts:
            folder = self.state_dir / host.short
            argv = ["setsid", "ip", "netns", "exec", self._netns(host), "unshare", "--mount", "--uts",
                    "--pid", "--fork", "--propagation", "private", "--", "/bin/bash", str(HOST_INIT),
                    self._netns(host), host.short, f"{host.address}/{topology.subnet.prefixlen}", str(folder)]
            log = shlex.quote(str(folder / "init.log"))
            lines.append(f"{shlex.join(argv)} >{log} 2>&1 </dev/null & echo {host.short} $!")
        proc = subprocess.run(["/bin/sh", "-c", "\n".join(lines)], capture_output=True, text=True)
        started = dict(line.split() for line in proc.stdout.splitlines())
        for rec in record.hosts:
            rec.launcher = procs.proc(int(started[rec.short])) if rec.short in started else None
        record.save(self.state_dir)
        if proc.returncode or len(started) != len(record.hosts):
            raise LabError(f"starting the hosts failed: {proc.stderr.strip()}")
        for rec in record.hosts:
            if rec.launcher is None:  # exited before we could even pin it
                raise LabError(f"lab host {rec.short} did not come up:\n{self._init_log(rec.short)}")

    def _wait_for_sshd(self, topology: Topology, record: LabRecord) -> None:
        """Wait until every host's sshd listens, record its PID, then check its banner over the bridge."""
        def not_listening() -> list[str]:
            pending = [rec for rec in record.hosts if not procs.listening_in_netns_of(rec.launcher.pid, 22)]
            for rec in pending:
                if not rec.launcher.alive():
                    raise LabError(f"lab host {rec.short} did not come up:\n{self._init_log(rec.short)}")
            return sorted(rec.short for rec in pending)

        late = wait_while(not_listening, 30 + 0.2 * len(record.hosts), 0.02)
        if late:
            raise LabError(f"sshd did not start in time on {', '.join(late)}:\n{self._init_log(late[0])}")
        kids = procs.children(rec.launcher.pid for rec in record.hosts)
        for rec in record.hosts:
            sshd = procs.proc(kids[rec.launcher.pid][0]) if kids[rec.launcher.pid] else None
            argv0 = procs.cmdline(sshd.pid)[:1] if sshd else []
            if not argv0 or "sshd" not in argv0[0]:  # sshd retitles itself "sshd: ... [listener]"
                raise LabError(f"lab host {rec.short}: sshd is not the host's PID 1:\n{self._init_log(rec.short)}")
            rec.sshd = sshd
        record.save(self.state_dir)
        silent = {h.address for h in topology.hosts} - _ssh_banners([h.address for h in topology.hosts])
        if silent:
            raise LabError(f"sshd listens but does not answer from the controller on {', '.join(sorted(silent))}")

    def _init_log(self, short: str) -> str:
        try:
            return (self.state_dir / short / "init.log").read_text()[-2000:]
        except OSError:
            return "(no init.log)"

    # health and teardown ------------------------------------------------------------------------

    def _healthy(self, record: LabRecord) -> bool:
        if record.phase != "up" or not net.link_exists(record.bridge):
            return False
        for rec in record.hosts:
            inode = procs.netns_inode(rec.netns)
            if inode is None or rec.sshd is None or not rec.sshd.alive():
                return False
            if procs.netns_of(rec.sshd.pid) != inode:
                return False
        topology = _topology_of(record)
        return len(_ssh_banners([h.address for h in topology.hosts])) == len(topology.hosts)

    def _teardown(self, record: LabRecord) -> None:
        """Remove everything ``record`` lists (and has the lab's name), then prove it is gone."""
        netns_prefix, veth_prefix = f"{record.bridge}-", f"{record.bridge}v"
        ours = [r for r in record.hosts if r.netns.startswith(netns_prefix) and r.veth.startswith(veth_prefix)]

        # 1. processes the lab started, by recorded PID; killing a host's PID 1 ends the whole host
        survivors = procs.terminate(p for r in ours for p in (r.sshd, r.launcher) if p)
        # 2. safety net: anything else in the lab's namespaces (e.g. entered with `ip netns exec`)
        inodes = [i for i in (procs.netns_inode(r.netns) for r in ours) if i is not None]
        stray = [procs.proc(pid) for pids in procs.pids_in_netns(inodes).values() for pid in pids]
        survivors += procs.terminate(p for p in stray if p)
        if survivors:
            raise LabError(f"lab processes survived SIGKILL: {[p.pid for p in survivors]}")

        # 3. namespaces (their veth pairs go with them), veths left over, the bridge
        for rec in ours:
            net.delete_netns(rec.netns)
        wait_while(lambda: [r.veth for r in ours if net.link_exists(r.veth)], 5.0, 0.02)  # async in the kernel
        for rec in ours:
            net.delete_link(rec.veth)
        if os.path.exists(f"/sys/class/net/{record.bridge}/bridge"):
            net.delete_link(record.bridge)

        # 4. prove it: no netns, link, process or mount of this lab is left anywhere
        state = f"{self.state_dir}/"
        mounts = procs.mounts_matching(
            lambda mp, src: src.startswith(netns_prefix) or mp.startswith(state)
            or mp.startswith(f"/run/netns/{netns_prefix}"))
        links = [n for n in [record.bridge] + [r.veth for r in ours] if net.link_exists(n)]
        left = [r.netns for r in ours if net.netns_exists(r.netns)] + links + mounts
        if left:
            raise LabError("the lab could not be removed completely; left: " + "; ".join(left))

        # 5. files: host folders and generated files; the client key stays for the next lab
        for rec in record.hosts:
            shutil.rmtree(self.state_dir / rec.short, ignore_errors=True)
        for name in ("known_hosts", "hosts", "inventory.yaml", STATE_FILE):
            (self.state_dir / name).unlink(missing_ok=True)
        _release_run_netns()

    def _check_free(self, topology: Topology) -> None:
        """Refuse to build over anything we do not own: names taken or the subnet in use."""
        taken = [n for n in [self.bridge] + [self._veth(h) for h in topology.hosts] if net.link_exists(n)]
        taken += [f"netns {self._netns(h)}" for h in topology.hosts if net.netns_exists(self._netns(h))]
        if taken:
            raise LabError(f"{', '.join(taken)} already exist but no lab in {self.state_dir} records them; "
                           "if they are leftovers of a lab whose state dir was deleted, remove them by hand "
                           f"(ip link del NAME / ip netns del NAME)")
        users = net.subnet_users(topology.subnet)
        if users:
            raise LabError(f"subnet {topology.subnet} is already in use on this machine ({'; '.join(users)}); "
                           "choose another lab subnet")

    # small helpers ------------------------------------------------------------------------------

    def _netns(self, host: LabHost) -> str:
        return f"{self.bridge}-{host.short}"

    def _veth(self, host: LabHost) -> str:
        return f"{self.bridge}v{host.offset}"

    def _upper(self, host: LabHost) -> Path:
        return self.state_dir / host.short / "upper"

    def _info(self, topology: Topology) -> LabInfo:
        return LabInfo(self.state_dir, self.state_dir / "inventory.yaml", self.state_dir / "known_hosts",
                       self.state_dir / "id_ed25519", self.bridge, topology)

    @contextmanager
    def _locked(self) -> Iterator[None]:
        """One up/down at a time per state dir (two pytest runs, a CLI call during a test...)."""
        self.state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        with open(self.state_dir / ".lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            yield


def _topology_of(record: LabRecord) -> Topology:
    return default_topology(record.compilers, record.agents, record.subnet, record.domain)


def _require_root() -> None:
    if os.geteuid() != 0:
        raise LabError("the lab needs root (network namespaces, bridges, mounts); run as root")


def _preflight() -> None:
    """Fail early, with the reason, where the lab cannot work."""
    _require_root()
    missing = [t for t in _TOOLS if shutil.which(t) is None]
    if missing:
        raise LabError(f"missing commands: {', '.join(missing)}; install the lab packages (lab_setup())")
    if "overlay" not in _kernel_filesystems():
        raise LabError("overlayfs is not available (no 'overlay' in /proc/filesystems); try `modprobe overlay`")
    proc = subprocess.run(["unshare", "--net", "--mount", "--uts", "--pid", "--fork", "--propagation", "private",
                           "true"], capture_output=True, text=True)
    if proc.returncode:
        raise LabError(f"cannot create namespaces here (`unshare` failed: {proc.stderr.strip()}); "
                       "the lab needs network, mount, UTS and PID namespaces")
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:  # a 200-host lab probes 200 sockets and runs many processes at once
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def _release_run_netns() -> None:
    """Undo ip's /run/netns bind mount (see RUN_NETNS_MARKER) once no namespace uses it."""
    if not RUN_NETNS_MARKER.exists() or not os.path.isdir(RUN_NETNS) or os.listdir(RUN_NETNS):
        return
    if procs.is_mount_point(RUN_NETNS):
        subprocess.run(["umount", RUN_NETNS], capture_output=True)
    if not procs.is_mount_point(RUN_NETNS):
        if RUN_NETNS_MARKER.read_text().strip() == "dir":
            os.rmdir(RUN_NETNS)
        RUN_NETNS_MARKER.unlink()


def _kernel_filesystems() -> list[str]:
    with open("/proc/filesystems") as f:
        return f.read().split()


_AGENT = re.compile(r"(?:^|/)puppet agent\b")


def service_of(argv: list[str]) -> str | None:
    """Which Puppet-stack service a command line belongs to, if any.

    The JVMs are told apart by their jar/config paths; nginx and a running puppet agent rewrite
    their argv[0] ("nginx: master process ...", "puppet agent: applying configuration").
    """
    if not argv:
        return None
    prog = os.path.basename(argv[0].split()[0]).rstrip(":")
    joined = " ".join(argv)
    if prog == "java":
        if "puppetdb" in joined:
            return "puppetdb"
        if "puppetserver" in joined:
            return "puppetserver"
        return None
    if prog in ("haproxy", "nginx"):
        return prog
    if _AGENT.search(joined):
        return "puppet agent"
    return None


def _ssh_banners(addresses: list[str]) -> set[str]:
    """The addresses whose port 22 answers with an SSH banner."""
    def probe(address: str) -> str | None:
        try:
            with socket.create_connection((address, 22), timeout=2) as sock:
                sock.settimeout(2)
                return address if sock.recv(8).startswith(b"SSH-") else None
        except OSError:
            return None
    if not addresses:
        return set()
    with ThreadPoolExecutor(min(32, len(addresses))) as pool:
        return {a for a in pool.map(probe, addresses) if a}
