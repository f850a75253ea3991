"""A host's root filesystem: overlay of the live root (lower) and a per-host upper dir.

Everything that makes a host distinct is written into its upper dir by the controller *before*
the overlay is mounted, in plain Python: hostname, /etc/hosts, resolver settings, sshd config,
fresh host keys, root's authorized_keys. That keeps host-init.sh down to namespaces and mounts,
and costs no process per file (200 hosts).

Overlay semantics used here: a directory created in the upper dir merges with the lower one and
takes the upper dir's owner/mode (so we copy them from the lower dir); a 0:0 character device
is a whiteout that hides a lower file (the real machine's host keys); the ``opaque`` xattr hides
a whole lower directory (root's real ~/.ssh stays invisible in the lab).
"""
from __future__ import annotations

import os
import stat
import subprocess
from pathlib import Path

from .errors import LabError
from .topology import LabHost


def sshd_config(host: LabHost) -> str:
    """A complete sshd_config (no Include: the real machine's drop-ins must not leak in)."""
    return f"""\
# puppetops lab host {host.fqdn} (generated; replaces the distribution's sshd_config)
ListenAddress {host.address}
HostKey /etc/ssh/ssh_host_ed25519_key
PidFile /run/sshd.pid
PermitRootLogin prohibit-password
AuthorizedKeysFile .ssh/authorized_keys
PasswordAuthentication no
KbdInteractiveAuthentication no
# no PAM session stack: nothing in it is needed for key-only root logins, and it costs time
UsePAM no
UseDNS no
# bash sources ~/.bashrc for ssh commands only when SHLVL < 2 after its own increment; root's
# .bashrc on this machine runs `pyenv init` (~190 ms per command), so start sessions at SHLVL=1
SetEnv SHLVL=1
# the executor opens many sessions at once
MaxStartups 100:30:200
MaxSessions 50
PrintMotd no
PrintLastLog no
AcceptEnv LANG LC_*
Subsystem sftp /usr/lib/openssh/sftp-server
"""


def _mkdir_like_lower(upper: Path, rel: str) -> Path:
    """Create ``upper/rel`` (and parents) with the owner and mode of ``/rel`` on the real root."""
    path = upper
    for part in Path(rel).parts:
        path = path / part
        if not path.is_dir():
            path.mkdir()
            lower = os.stat(Path("/") / path.relative_to(upper))
            os.chown(path, lower.st_uid, lower.st_gid)
            os.chmod(path, stat.S_IMODE(lower.st_mode))
    return path


def _write(path: Path, text: str, mode: int = 0o644) -> None:
    path.write_text(text)
    os.chmod(path, mode)


def _nsswitch() -> str:
    """The real nsswitch.conf with ``hosts: files`` (P2: no DNS in the lab, fail fast)."""
    lines = [line for line in Path("/etc/nsswitch.conf").read_text().splitlines()
             if not line.startswith("hosts:")]
    return "\n".join(lines + ["hosts:          files"]) + "\n"


def generate_host_key(upper: Path, host: LabHost) -> str:
    """A fresh ed25519 host key in ``upper/etc/ssh``; returns the public key line."""
    ssh_dir = _mkdir_like_lower(upper, "etc/ssh")
    key = ssh_dir / "ssh_host_ed25519_key"
    proc = subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", f"root@{host.fqdn}",
                           "-f", str(key)], capture_output=True, text=True)
    if proc.returncode:
        raise LabError(f"ssh-keygen for {host.short} failed: {proc.stderr.strip()}")
    return key.with_suffix(".pub").read_text()


def populate(upper: Path, host: LabHost, hosts_file: str, known_hosts: str, client_pubkey: str) -> None:
    """Write the host's identity and config into its upper dir (the host key already exists)."""
    etc = _mkdir_like_lower(upper, "etc")
    _write(etc / "hostname", f"{host.short}\n")
    _write(etc / "hosts", hosts_file)
    _write(etc / "resolv.conf", "nameserver 127.0.0.1\n")
    _write(etc / "nsswitch.conf", _nsswitch())

    ssh_dir = _mkdir_like_lower(upper, "etc/ssh")
    _write(ssh_dir / "sshd_config", sshd_config(host))
    _write(ssh_dir / "ssh_known_hosts", known_hosts)  # host-to-host ssh with checking on
    for lower_key in Path("/etc/ssh").glob("ssh_host_*"):
        if not (ssh_dir / lower_key.name).exists():
            os.mknod(ssh_dir / lower_key.name, stat.S_IFCHR | 0o600, os.makedev(0, 0))  # whiteout

    dot_ssh = _mkdir_like_lower(upper, "root") / ".ssh"
    dot_ssh.mkdir(mode=0o700, exist_ok=True)
    os.setxattr(dot_ssh, "trusted.overlay.opaque", b"y")
    _write(dot_ssh / "authorized_keys", client_pubkey, 0o600)
