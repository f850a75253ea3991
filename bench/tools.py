"""The fan-out contenders: how to run each tool on the first N fleet hosts, and how to tell it
reached them all.

Every tool is its usual command line (or, for the libraries without one, a ten-line script in
``client_*.py``), started as a fresh process so start-up costs count for all alike. Host-key
checking is ON (strict, against the fleet's known_hosts) for every tool except parallel-ssh,
whose native client has no known_hosts support.
"""
from __future__ import annotations

import json
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from harness import Sample

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
# Ansible's and xargs' OpenSSH client: no user config, keys only, strict host keys.
_SSH_BASE = ["-F", "/dev/null", "-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes",
             "-o", "StrictHostKeyChecking=yes"]
CURVE25519 = ["-o", "KexAlgorithms=curve25519-sha256"]
XARGS_PARALLEL = 50
ANSIBLE_FORKS = 50


@dataclass
class Context:
    """Where one benchmark run keeps its fleet data and generated per-N inventories."""

    workdir: Path
    hosts: list[str]
    user: str
    port: int
    key: str
    known_hosts: str
    peers_bin: Path

    @classmethod
    def from_fleet(cls, fleet, workdir: Path, peers_bin: Path) -> "Context":
        ctx = cls(workdir, [h.address for h in fleet.hosts], fleet.user, fleet.port,
                  str(fleet.client_key_path), str(fleet.known_hosts_path), peers_bin)
        (workdir / "spec.json").write_text(json.dumps({
            "hosts": ctx.hosts, "user": ctx.user, "port": ctx.port, "key": ctx.key,
            "known_hosts": ctx.known_hosts}))
        return ctx

    @property
    def spec(self) -> str:
        return str(self.workdir / "spec.json")

    def write_inventories(self, fleet, count: int) -> None:
        """puppetops YAML, pyinfra Python and Ansible INI inventories of the first ``count`` hosts."""
        import yaml

        data = fleet.inventory_dict()
        data["groups"][0]["targets"] = data["groups"][0]["targets"][:count]
        (self.workdir / f"puppetops_{count}.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
        host_data = {"ssh_user": self.user, "ssh_port": self.port, "ssh_key": self.key,
                     "ssh_known_hosts_file": self.known_hosts,
                     "ssh_strict_host_key_checking": "yes"}
        (self.workdir / f"pyinfra_{count}.py").write_text(
            "fleet = " + repr([(h, host_data) for h in self.hosts[:count]]) + "\n")
        (self.workdir / f"ansible_{count}.ini").write_text(
            "[fleet]\n" + "".join(f"{h}\n" for h in self.hosts[:count]))


@dataclass
class Tool:
    name: str
    note: str
    argv: Callable[[Context, int, str], list[str]]
    ok: Callable[[Sample, int], int]
    env: Callable[[Context], dict] = lambda ctx: {}
    host_key_check: bool = True


def _ok_line(sample: Sample, count: int) -> int:
    """Clients in client_*.py print ``ok=K/N``."""
    match = re.search(r"ok=(\d+)/", sample.stdout)
    return int(match.group(1)) if match else 0


def _ok_puppetops(sample: Sample, count: int) -> int:
    try:
        return json.loads(sample.stdout)["steps"][0]["counts"]["ok"]
    except (ValueError, KeyError, IndexError):
        return 0


def _ok_pyinfra(sample: Sample, count: int) -> int:
    match = re.search(r"Grand total\s+(\d+)\s+(\d+)", sample.stdout + sample.stderr)
    return int(match.group(2)) if match and sample.rc == 0 else 0


def _ok_ansible(sample: Sample, count: int) -> int:
    return len(re.findall(r"^\S+ \| (?:CHANGED|SUCCESS) \|", sample.stdout, re.M))


def _ok_rc(sample: Sample, count: int) -> int:
    """xargs exits 123 if any ssh failed, so exit 0 means every host ran the command."""
    return count if sample.rc == 0 else 0


def _puppetops(ctx: Context, n: int, cmd: str) -> list[str]:
    return [sys.executable, "-m", "puppetops", "command", cmd, "--targets", "all",
            "-i", str(ctx.workdir / f"puppetops_{n}.yaml"), "--format", "json"]


def _puppetops_env(ctx: Context) -> dict:
    return {"PYTHONPATH": str(REPO)}


def _xargs_ssh(kex: list[str]) -> Callable[[Context, int, str], list[str]]:
    def argv(ctx: Context, n: int, cmd: str) -> list[str]:
        hosts = ctx.workdir / f"hosts_{n}.txt"
        hosts.write_text("".join(f"{h}\n" for h in ctx.hosts[:n]))
        ssh = ["ssh", *_SSH_BASE, *kex, "-i", ctx.key, "-p", str(ctx.port),
               "-o", f"UserKnownHostsFile={ctx.known_hosts}", "-l", ctx.user]
        return ["xargs", "-a", str(hosts), "-P", str(XARGS_PARALLEL), "-I{}", *ssh, "{}", cmd]
    return argv


def _ansible_env(ctx: Context) -> dict:
    home = ctx.workdir / "ansible"
    ssh_common = " ".join([*_SSH_BASE, "-o", f"UserKnownHostsFile={ctx.known_hosts}"])
    return {
        "ANSIBLE_HOME": str(home), "ANSIBLE_LOCAL_TEMP": str(home / "tmp"),
        "ANSIBLE_SSH_CONTROL_PATH_DIR": str(home / "cp"),
        "ANSIBLE_HOST_KEY_CHECKING": "True", "ANSIBLE_GATHERING": "explicit",
        "ANSIBLE_PRIVATE_KEY_FILE": ctx.key, "ANSIBLE_REMOTE_USER": ctx.user,
        "ANSIBLE_REMOTE_PORT": str(ctx.port),
        # Ansible's default ssh_args minus ControlPersist: a persisted master would make later
        # repetitions warm and keep sshd sessions alive into the next tool's measurement.
        "ANSIBLE_SSH_ARGS": "-C -o ControlMaster=no -o ControlPersist=no",
        "ANSIBLE_SSH_COMMON_ARGS": ssh_common,
        "ANSIBLE_PYTHON_INTERPRETER": "/usr/bin/python3",
    }


TOOLS = [
    Tool("puppetops", "`puppetops command` CLI (JSON output), defaults", _puppetops, _ok_puppetops,
         env=_puppetops_env),
    Tool("pyinfra", "`pyinfra INV exec --parallel N` (paramiko + gevent)",
         lambda ctx, n, cmd: [str(ctx.peers_bin / "pyinfra"), f"pyinfra_{n}.py", "exec", "-y",
                              "--parallel", str(n), "--", cmd], _ok_pyinfra),
    Tool("fabric", "Fabric `ThreadingGroup.run` (paramiko, thread per host)",
         lambda ctx, n, cmd: [str(ctx.peers_bin / "python"), str(BENCH / "client_fabric.py"),
                              ctx.spec, str(n), cmd], _ok_line),
    Tool("parallel-ssh", "`ParallelSSHClient(pool_size=100)` (libssh2 + gevent); NO host-key check",
         lambda ctx, n, cmd: [str(ctx.peers_bin / "python"), str(BENCH / "client_pssh.py"),
                              ctx.spec, str(n), cmd], _ok_line, host_key_check=False),
    Tool("ansible", f"`ansible -m raw -f {ANSIBLE_FORKS}` (OpenSSH, default KEX, no ControlPersist)",
         lambda ctx, n, cmd: [str(ctx.peers_bin / "ansible"), "fleet", "-i", f"ansible_{n}.ini",
                              "-m", "raw", "-a", cmd, "-f", str(ANSIBLE_FORKS), "-o"],
         _ok_ansible, env=_ansible_env),
    Tool("ssh-xargs", f"`xargs -P {XARGS_PARALLEL} ssh` (OpenSSH 9.2 default KEX sntrup761)",
         _xargs_ssh([]), _ok_rc),
    Tool("ssh-xargs-c25519", f"`xargs -P {XARGS_PARALLEL} ssh -o KexAlgorithms=curve25519-sha256`",
         _xargs_ssh(CURVE25519), _ok_rc),
]


def child_env(tool: Tool, ctx: Context) -> dict:
    """The tool's environment: ours plus its own settings, with the peers venv first on PATH."""
    env = dict(os.environ, **tool.env(ctx))
    env["PATH"] = f"{ctx.peers_bin}{os.pathsep}{env.get('PATH', '')}"
    return env
