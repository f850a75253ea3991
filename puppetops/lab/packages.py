"""Install what the lab and the Puppet stack need on the controller, without starting anything.

The lab hosts' lower layer is the live root, so packages must be installed on the real machine,
and before any lab is up (changing an overlay's lower layer under a mounted overlay is undefined).
Debian packages start their daemons from postinst; on the real root that would be wrong (the
daemons belong inside lab hosts), so installs run with a temporary policy-rc.d that forbids it,
and any daemon that still appears is stopped by the PID in its pidfile.
"""
from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from .errors import LabError
from ..procs import Proc, proc, terminate

LAB_PACKAGES = ("openssh-server", "iproute2", "puppetserver", "puppet-agent", "r10k", "g10k", "haproxy",
                "nginx", "libnginx-mod-stream", "git", "socat", "curl", "procps", "sudo", "openssl",
                "nftables",  # nft: the fault tests make a host's port 22 refuse connections
                "puppetdb", "puppet-terminus-puppetdb", "postgresql",  # install_puppetdb
                # the status page's browser test: Debian's Chromium, driven by Selenium
                "chromium", "chromium-driver")
# commands the tests need, whoever packaged them: Debian's packages only where the command is
# missing (NodeSource's nodejs brings its own npm, and conflicts with Debian's npm package).
# npm: the status tests parse the Mermaid diagram with mermaid's own parser (npm's mermaid).
COMMAND_PACKAGES = {"npm": ("nodejs", "npm")}
# pidfiles of the daemons those packages could start on the real root
DAEMON_PIDFILES = ("/run/sshd.pid", "/run/haproxy.pid", "/run/nginx.pid", "/run/puppet/agent.pid",
                   "/run/puppetserver/puppetserver.pid", "/run/puppetdb/puppetdb.pid",
                   "/run/postgresql/15-main.pid")
POLICY_RC_D = Path("/usr/sbin/policy-rc.d")
# Debian's puppetdb would have dbconfig-common make its database (PostgreSQL does not run on
# the controller, and install_puppetdb makes it on the lab host, with a password of its own)
DEBCONF_SELECTIONS = "puppetdb puppetdb/dbconfig-install boolean false\n"


def missing_packages(packages: tuple[str, ...] = LAB_PACKAGES) -> list[str]:
    """The packages dpkg does not report as ``install ok installed``."""
    proc_ = subprocess.run(["dpkg-query", "-W", "-f=${Package} ${Status}\\n", *packages],
                           capture_output=True, text=True)  # exits 1 when some are unknown: fine
    installed = {line.split()[0].split(":")[0] for line in proc_.stdout.splitlines()
                 if line.endswith(" install ok installed")}
    return [p for p in packages if p not in installed]


def missing_commands(commands: dict[str, tuple[str, ...]] = COMMAND_PACKAGES) -> list[str]:
    """The packages of each command of ``commands`` that is not on PATH."""
    return [p for command, found_in in commands.items() if not shutil.which(command)
            for p in found_in]


def lab_setup(packages: tuple[str, ...] = LAB_PACKAGES,
              commands: dict[str, tuple[str, ...]] = COMMAND_PACKAGES) -> list[str]:
    """Install the missing ``packages`` and the packages of missing ``commands`` (``apt-get
    update`` only then); returns what was installed."""
    missing = list(dict.fromkeys(missing_packages(packages) + missing_commands(commands)))
    if not missing:
        return []
    if os.geteuid() != 0:
        raise LabError(f"installing {' '.join(missing)} needs root")
    running_before = {p: _pidfile_proc(p) for p in DAEMON_PIDFILES}
    own_policy = not POLICY_RC_D.exists()
    if own_policy:
        POLICY_RC_D.write_text("#!/bin/sh\n# puppetops lab_setup: do not start daemons during install\nexit 101\n")
        POLICY_RC_D.chmod(0o755)
    try:
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        if shutil.which("debconf-set-selections"):
            subprocess.run(["debconf-set-selections"], input=DEBCONF_SELECTIONS, text=True,
                           capture_output=True, env=env)
        for argv in (["apt-get", "update"],
                     ["apt-get", "install", "-y", "--no-install-recommends", *missing]):
            done = subprocess.run(argv, env=env, capture_output=True, text=True)
            if done.returncode:
                raise LabError(f"`{' '.join(argv)}` failed:\n{(done.stdout + done.stderr)[-3000:]}")
    finally:
        if own_policy:
            POLICY_RC_D.unlink(missing_ok=True)
    started = [p for f in DAEMON_PIDFILES if (p := _pidfile_proc(f)) and p != running_before[f]]
    if terminate(started):
        raise LabError("could not stop daemons the install started: "
                       + ", ".join(str(p.pid) for p in started if p.alive()))
    return missing


def _pidfile_proc(path: str) -> Proc | None:
    """The live process a pidfile names, or None."""
    try:
        return proc(int(Path(path).read_text().split()[0]))
    except (OSError, ValueError, IndexError):
        return None
