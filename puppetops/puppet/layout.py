"""The two Puppet package layouts — Debian's own packages and the Puppet/OpenVox AIO ones.

Every path a plan touches comes from this table, chosen per host from the ``facts`` plan
(``puppet_layout``), so no plan hard-codes ``/etc/puppet`` or ``/etc/puppetlabs``.
"""
from __future__ import annotations

from dataclasses import dataclass


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


LAYOUTS = {
    "debian": Layout(
        name="debian", puppet="/usr/bin/puppet", puppetserver="/usr/bin/puppetserver",
        confdir="/etc/puppet", codedir="/etc/puppet/code", ssldir="/var/lib/puppet/ssl",
        cadir="/etc/puppet/puppetserver/ca", server_confd="/etc/puppet/puppetserver/conf.d",
        server_servicesd="/etc/puppet/puppetserver/services.d",
        server_defaults="/etc/default/puppetserver", server_rundir="/run/puppetserver",
        server_logdir="/var/log/puppetserver",
        server_jar="/usr/share/puppetserver/puppetserver.jar",
        r10k_config="/etc/puppetlabs/r10k/r10k.yaml"),
    "aio": Layout(
        name="aio", puppet="/opt/puppetlabs/bin/puppet",
        puppetserver="/opt/puppetlabs/bin/puppetserver", confdir="/etc/puppetlabs/puppet",
        codedir="/etc/puppetlabs/code", ssldir="/etc/puppetlabs/puppet/ssl",
        cadir="/etc/puppetlabs/puppetserver/ca", server_confd="/etc/puppetlabs/puppetserver/conf.d",
        server_servicesd="/etc/puppetlabs/puppetserver/services.d",
        server_defaults="/etc/default/puppetserver", server_rundir="/var/run/puppetlabs/puppetserver",
        server_logdir="/var/log/puppetlabs/puppetserver",
        server_jar="/opt/puppetlabs/server/apps/puppetserver/puppet-server-release.jar",
        r10k_config="/etc/puppetlabs/r10k/r10k.yaml"),
}


def layout_for(facts: dict) -> Layout:
    """The layout named by a target's ``puppet_layout`` fact (Debian's when unknown)."""
    return LAYOUTS.get(facts.get("puppet_layout") or "debian", LAYOUTS["debian"])
