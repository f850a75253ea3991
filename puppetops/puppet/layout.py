"""The two Puppet package layouts — Debian's own packages and the Puppet/OpenVox AIO ones.

Every path a plan touches comes from this table, chosen per host from the ``facts`` plan
(``puppet_layout``), so no plan hard-codes ``/etc/puppet`` or ``/etc/puppetlabs``.
"""
from __future__ import annotations

from dataclasses import dataclass

_DEBIAN_JAR = "/usr/share/puppetserver/puppetserver.jar"
_AIO_JAR = "/opt/puppetlabs/server/apps/puppetserver/puppet-server-release.jar"


@dataclass(frozen=True)
class Layout:
    name: str
    puppet: str                 # agent binary
    puppetserver: str           # server binary
    confdir: str                # puppet.conf, csr_attributes.yaml
    codedir: str
    ssldir: str
    cadir: str
    server_confd: str           # puppetserver conf.d
    server_servicesd: str       # puppetserver services.d (ca.cfg)
    server_defaults: str        # JAVA_ARGS
    server_rundir: str
    server_logdir: str
    server_jar: str
    r10k_config: str            # first path r10k reads that we manage
    # added for the stand-up plans (defaults fit both layouts unless set in LAYOUTS)
    agent_vardir: str = "/var/cache/puppet"     # last_run_summary.yaml lives in its public/
    r10k: str = "/usr/bin/r10k"
    r10k_gem: str | None = None                 # gem that installs r10k (None: OS package)
    server_user: str = "puppet"
    # what the package's unit runs after `java $JAVA_ARGS`, up to --config (the JVM's main)
    server_jvm_main: tuple[str, ...] = ()
    server_bootstrap_config: str = ""           # --bootstrap-config (comma-separated dirs)

    @property
    def puppet_conf(self) -> str:
        return f"{self.confdir}/puppet.conf"

    @property
    def environmentpath(self) -> str:
        return f"{self.codedir}/environments"

    @property
    def ca_cfg(self) -> str:
        return f"{self.server_servicesd}/ca.cfg"

    @property
    def auth_conf(self) -> str:
        return f"{self.server_confd}/auth.conf"

    @property
    def ca_conf(self) -> str:
        return f"{self.server_confd}/ca.conf"

    @property
    def last_run_summary(self) -> str:
        return f"{self.agent_vardir}/public/last_run_summary.yaml"

    @property
    def server_restart_file(self) -> str:
        """Trapperkeeper writes 1 here once started or reloaded (the units wait for it)."""
        return f"{self.server_rundir}/restart"

    @property
    def server_pidfile(self) -> str:
        return f"{self.server_rundir}/puppetserver.pid"


LAYOUTS = {
    "debian": Layout(
        name="debian", puppet="/usr/bin/puppet", puppetserver="/usr/bin/puppetserver",
        confdir="/etc/puppet", codedir="/etc/puppet/code", ssldir="/var/lib/puppet/ssl",
        cadir="/etc/puppet/puppetserver/ca", server_confd="/etc/puppet/puppetserver/conf.d",
        server_servicesd="/etc/puppet/puppetserver/services.d",
        server_defaults="/etc/default/puppetserver", server_rundir="/run/puppetserver",
        server_logdir="/var/log/puppetserver",
        server_jar=_DEBIAN_JAR,
        r10k_config="/etc/puppetlabs/r10k/r10k.yaml",
        # /lib/systemd/system/puppetserver.service of puppetserver 7.9.5-2+deb12u1
        server_jvm_main=("-Djruby.lib=/usr/share/jruby/lib", "-XX:+CrashOnOutOfMemoryError",
                         "-XX:ErrorFile=/var/log/puppetserver/puppetserver_err_pid%p.log",
                         "-jar", _DEBIAN_JAR),
        server_bootstrap_config="/etc/puppet/puppetserver/services.d"),
    "aio": Layout(
        name="aio", puppet="/opt/puppetlabs/bin/puppet",
        puppetserver="/opt/puppetlabs/bin/puppetserver", confdir="/etc/puppetlabs/puppet",
        codedir="/etc/puppetlabs/code", ssldir="/etc/puppetlabs/puppet/ssl",
        cadir="/etc/puppetlabs/puppetserver/ca", server_confd="/etc/puppetlabs/puppetserver/conf.d",
        server_servicesd="/etc/puppetlabs/puppetserver/services.d",
        server_defaults="/etc/default/puppetserver", server_rundir="/var/run/puppetlabs/puppetserver",
        server_logdir="/var/log/puppetlabs/puppetserver",
        server_jar=_AIO_JAR,
        r10k_config="/etc/puppetlabs/r10k/r10k.yaml",
        agent_vardir="/opt/puppetlabs/puppet/cache",
        r10k="/opt/puppetlabs/puppet/bin/r10k", r10k_gem="/opt/puppetlabs/puppet/bin/gem",
        # ezbake's cli/apps/start for the AIO packages (not verified on a host here)
        server_jvm_main=("-Djava.security.egd=/dev/urandom", "-XX:+CrashOnOutOfMemoryError",
                         "-XX:ErrorFile=/var/log/puppetlabs/puppetserver/"
                         "puppetserver_err_pid%p.log",
                         "-cp", _AIO_JAR, "clojure.main", "-m", "puppetlabs.trapperkeeper.main"),
        server_bootstrap_config="/etc/puppetlabs/puppetserver/services.d/,"
                                "/opt/puppetlabs/server/apps/puppetserver/config/services.d/"),
}


def layout_for(facts: dict) -> Layout:
    """The layout named by a target's ``puppet_layout`` fact (Debian's when unknown)."""
    return LAYOUTS.get(facts.get("puppet_layout") or "debian", LAYOUTS["debian"])
