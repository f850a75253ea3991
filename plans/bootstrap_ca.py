"""The ``bootstrap_ca`` plan: the main server — CA, Puppet Server, control repo, code."""
from __future__ import annotations


from puppetops.flow import Cohort, changed, single
from puppetops.params import TargetSpec
from puppetops.plan_registry import plan
from puppetops.puppet import conf, names, node
from puppetops.run import Run
from puppetops.step import StepContext
from puppetops.steps import Packages, puppetserver_control
from puppetops.steps.ca import ca_api
from puppetops.steps.ca.authority import CaCreated, CaPolicy, CaService
from puppetops.steps.code import envcache, provision
from puppetops.steps.facts import gather
from puppetops.steps.preflight import preflight
from puppetops.steps.probe import Probe
from puppetops.steps.puppetdb.host import allowed, puppetdb_host, start_puppetdb
from puppetops.steps.puppetdb.terminus import terminus_steps
from puppetops.steps.puppet_agent import PuppetConf
from puppetops.steps.puppetserver import (SERVER_PACKAGES, AdminApiAccess, ServerJavaArgs,
                                          start_servers)
from puppetops.target import Target


def main_settings(main: Target) -> conf.Settings:
    """Main is its own server and CA; autosign is off (explicitly: never autosign); it keeps
    environments cached until deploy_code flushes them (``envcache``)."""
    name = node.certname(main)
    return {"main": {"certname": name, "server": name, "ca_server": name, "autosign": None},
            "master": {"autosign": None},
            "server": {"autosign": "false", **envcache.SERVER_SETTINGS}}


def ca_statuses(ctx: StepContext) -> str:
    """The CA's API answers this host's own certificate (pp_cli_auth), which is what every
    later signing and cleaning uses."""
    found = ca_api.all_statuses(ctx, node.layout(ctx.target), node.certname(ctx.target))
    return f"{len(found)} certificate(s) and request(s) on the CA"


CA_ANSWERS = Probe("CA answers", "the CA",
                   lambda ctx: puppetserver_control.ready(ctx, node.certname(ctx.target)),
                   ca_statuses)


@plan(main="targets")
def bootstrap_ca(run: Run, targets: TargetSpec = "main", environment: str = "production",
                 puppetdb: bool = False) -> None:
    """Stand up main: CA, Puppet Server, control repo and code.

    Main server: preflight, puppet.conf, CA policy, CA service, the CA, admin API rule,
    control repo and code (r10k), Puppet Server started and ready, CA verified.

    Main's certname is its inventory name (or var certname) and must be its FQDN.
    puppetserver_java_args (e.g. "-Xms512m -Xmx512m") is merged into JAVA_ARGS.

    With --puppetdb, also PuppetDB (install_puppetdb) on the puppetdb group's host, else
    main: main's Puppet Server then stores in it from its first start.

    Args:
        environment: the environment (branch of the control repo) r10k deploys
        puppetdb: also install PuppetDB in this run (install_puppetdb)
    """
    names.environment(environment)
    main = single(run, targets, "bootstrap_ca")
    node.validate([main], node.certname, node.java_args)
    pdb = puppetdb_host(run.inventory, main) if puppetdb else None
    if pdb:
        node.validate([pdb], node.certname, node.puppetdb_java_args)
        allow_list = allowed(run, main)  # checks the compilers' certnames now
    run.each("facts", gather, [main])
    run.each("preflight", preflight, [main])
    jvm = ServerJavaArgs()
    config_steps = [Packages(*SERVER_PACKAGES), PuppetConf(main_settings), CaPolicy(),
                    CaService(True), jvm, CaCreated(), AdminApiAccess(main),
                    *(terminus_steps(node.certname(pdb)) if pdb else [])]
    config = dict(zip(config_steps, run.pipeline(config_steps, [main])))
    if pdb:  # its JVM starts while the code is deployed and Puppet Server starts
        start_puppetdb(run, pdb, allow_list)
    run.plan("setup_control_repo", targets=main.name, environment=environment)
    servers = Cohort(run, [main], stop=True)
    provision.deploy(servers, main, environment)
    start_servers(servers, changed(config.values()), changed([config[jvm]]))
    run.step(CA_ANSWERS, [main])
    if pdb:
        run.plan("install_puppetdb", targets=main.name, main=main.name, puppetdb_host=pdb.name)
