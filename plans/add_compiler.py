"""The ``add_compiler`` plan: new compilers, signed by main's CA, behind the load balancer."""
from __future__ import annotations

from puppetops.flow import changed
from puppetops.params import TargetSpec
from puppetops.plan_registry import plan
from puppetops.puppet import conf, names, node
from puppetops.run import Run
from puppetops.steps import Packages
from puppetops.steps.ca.authority import CaService
from puppetops.steps.ca.certs import Identity
from puppetops.steps.ca.enrolment import enrol, newcomers
from puppetops.steps.code import envcache, provision
from puppetops.steps.lb import pool
from puppetops.steps.lb.balance import balance, current_members
from puppetops.steps.puppetdb.host import allow, installed_on
from puppetops.steps.puppetdb.terminus import terminus_steps
from puppetops.steps.puppet_agent import PuppetConf
from puppetops.steps.puppetserver import (SERVER_PACKAGES, AdminApiAccess, ServerJavaArgs,
                                          start_servers)
from puppetops.target import Target


def compiler_identity(compiler: Target) -> Identity:
    """Agents reach a compiler under the LB's name, so its certificate carries that name
    besides its own."""
    name = node.certname(compiler)
    return Identity(name, (name, node.lb_name(compiler)))


def compiler_settings(main: Target):
    """puppet.conf of a compiler: itself as certname, main as server and CA, its alt names;
    a stale server_list (a reused node) would override server, so it goes. Environments stay
    cached until deploy_code flushes them (``envcache``)."""
    def settings(compiler: Target) -> conf.Settings:
        ca = node.certname(main)
        return {"main": {"certname": node.certname(compiler), "server": ca, "ca_server": ca,
                         "dns_alt_names": ",".join(compiler_identity(compiler).alt_names),
                         "server_list": None},
                "agent": {"server_list": None},
                "server": dict(envcache.SERVER_SETTINGS)}
    return settings


@plan(main="main")
def add_compiler(run: Run, targets: TargetSpec = "compilers", main: TargetSpec = "main",
                 loadbalancers: TargetSpec = "loadbalancers", environment: str = "production"
                 ) -> None:
    """Add compilers behind the load balancers, certificates signed by main.

    New compilers, in parallel: packages, CA service disabled before the first start,
    puppet.conf, certificate (fingerprint and alt names checked on main, then signed), code
    (r10k), Puppet Server ready, then added to every load balancer and seen UP there.
    Where install_puppetdb has installed PuppetDB, the compilers store in it too and are on
    its certificate allow-list.

    A compiler that fails drops out; the others go on (the run still fails). A certificate
    with wrong alt names is cleaned and re-issued; a correct one is left alone.

    Args:
        main: the CA host: a target or group selecting exactly one
        loadbalancers: the load balancers to add them to
        environment: the environment (branch of the control repo) r10k deploys
    """
    names.environment(environment)
    lbs = run.targets(loadbalancers)
    ca, compilers = newcomers(run, targets, main, node.java_args, pool.member)
    pdb = installed_on(run, ca)
    jvm = ServerJavaArgs()
    config_steps = [Packages(*SERVER_PACKAGES), CaService(False), PuppetConf(compiler_settings(ca)),
                    jvm, AdminApiAccess(ca), *(terminus_steps(node.certname(pdb)) if pdb else [])]
    config = dict(zip(config_steps, compilers.pipeline(config_steps)))
    new_certs = enrol(compilers, ca, {t.name: compiler_identity(t) for t in compilers.live})
    provision.deploy(compilers, ca, environment)
    if pdb and compilers.live:
        allow(run, pdb, [node.certname(t) for t in compilers.live])
    start_servers(compilers, changed(config.values()) | new_certs, changed([config[jvm]]))

    added = [pool.member(t) for t in compilers.live]
    if added and lbs:
        current = {r.target: r.value for r in run.each("LB members", current_members, lbs)}
        members = {t.name: sorted(set(current[t.name]) | set(added)) for t in lbs}
        balance(run, lbs, members, {t.name: added for t in lbs})
