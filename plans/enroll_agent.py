"""The ``enroll_agent`` plan: agents with a signed certificate and a first run via the LB."""
from __future__ import annotations

from puppetops.params import TargetSpec
from puppetops.plan_registry import plan
from puppetops.puppet import conf, node
from puppetops.run import Run
from puppetops.steps import Packages, Service
from puppetops.steps.ca.certs import Identity
from puppetops.steps.ca.enrolment import enrol, newcomers
from puppetops.steps.puppet_agent import AgentRun, PuppetConf
from puppetops.target import Target

AGENT_PACKAGES = ("puppet-agent", "openssl")


def agent_settings(main: Target):
    """puppet.conf of an agent: catalogs from the LB name, certificates from main; no alt
    names (an agent's certificate names only itself) and no stale server_list."""
    def settings(agent: Target) -> conf.Settings:
        return {"main": {"certname": node.certname(agent), "server": node.lb_name(agent),
                         "ca_server": node.certname(main), "dns_alt_names": None,
                         "server_list": None},
                "agent": {"server_list": None, "dns_alt_names": None}}
    return settings


@plan(main="main")
def enroll_agent(run: Run, targets: TargetSpec = "agents", main: TargetSpec = "main",
                 first_run: bool = True) -> None:
    """Enroll agents: certificates checked and signed on main, first run via the LB.

    Agents, in parallel: package, puppet.conf (server = the LB, ca_server = main), a key
    (vars cert_key_type rsa|ec, cert_key_size, cert_key_curve) and certificate request
    checked against each agent's own fingerprint and signed on main in one call (never
    autosign), a first run through the LB (exit 0 or 2; first_run=false skips it), and the
    agent service left as var agent_service says (running|stopped, default stopped).

    An agent that fails — e.g. its request on the CA is not its own — drops out, with the
    reason; the others go on.

    Args:
        main: the CA host: a target or group selecting exactly one
        first_run: --no-first-run: stop once the certificate is installed (the agent's own
            schedule makes the first run)
    """
    ca, agents = newcomers(run, targets, main, node.agent_service)
    agents.pipeline([Packages(*AGENT_PACKAGES), PuppetConf(agent_settings(ca))])
    renewed = enrol(agents, ca, {t.name: Identity(node.certname(t)) for t in agents.live})
    if first_run:
        agents.step(AgentRun(again=renewed))
    for state in node.AGENT_SERVICE_STATES:
        agents.step(Service("puppet", state),
                    only=[t for t in agents.live if node.agent_service(t) == state])
