"""The ``purge_agent`` plan: agents removed from the infrastructure for good — their
certificate revoked and deleted, the servers told — whether the host still answers or not.

    agent        its service stopped and disabled, its SSL files gone (skipped, and said,
                 when it does not answer: a host gone for good)
    PuppetDB     everything it holds about them deleted (where install_puppetdb put it)
    main (CA)    certificate revoked and deleted (also for certnames no inventory names now)
    compilers    the new CRL, so the revoked certificate gets no catalog there either
"""
from __future__ import annotations

from typing import Annotated, Optional

from puppetops.errors import UsageError
from puppetops.flow import Cohort, answering, single
from puppetops.params import Check, TargetSpec, requires
from puppetops.plan_registry import plan
from puppetops.puppet import names, node
from puppetops.result import Notes
from puppetops.run import Run
from puppetops.steps.ca.revocation import CertificatesCleaned, NodeSslCleaned, refresh_crl
from puppetops.steps.facts import gather
from puppetops.steps.puppetdb.host import installed_on
from puppetops.steps.puppetdb.nodes import NodesDeleted
from puppetops.steps.services import ServiceDisabled
from puppetops.target import Target

PLAN = "purge_agent"
AGENT_SERVICE = "puppet"

# Checked as the command line is read, before the inventory or any host: never an option
# (--all), a wildcard or shell syntax on its way to the CA.
Certnames = Annotated[tuple[str, ...], Check(names.certnames)]


def purged_names(agents: list[Target], certnames: list[str], servers: list[Target]) -> list[str]:
    """Every certname to purge, validated (exit 2 for a bad one), each once; a server's is
    refused — purging it would cut the server off (remove_compiler is for compilers)."""
    wanted = list(dict.fromkeys([*(node.certname(t) for t in agents),
                                 *names.certnames(list(certnames))]))
    servers_by_name = {node.certname(t): t.name for t in servers}
    taken = [n for n in wanted if n in servers_by_name]
    if taken:
        raise UsageError(f"{PLAN}: {', '.join(taken)} is a server's certname "
                         f"({', '.join(servers_by_name[n] for n in taken)}), not an agent's; "
                         "remove_compiler removes a compiler")
    return wanted


def _something_to_purge(targets: str | None, certnames: tuple[str, ...]) -> None:
    if not targets and not certnames:
        raise UsageError(f"{PLAN}: give the agents (--targets) or their certnames "
                         "(certnames=NAME[,NAME...]) to purge")


@plan(main="main")
@requires(_something_to_purge)
def purge_agent(run: Run, targets: Optional[TargetSpec] = None, certnames: Certnames = (),
                main: TargetSpec = "main", compilers: TargetSpec = "compilers"
                ) -> Notes | None:
    """Purge agents for good: certificate revoked and deleted, agent stopped if reachable.

    On each agent that answers: its puppet service stopped and disabled at boot, and its
    key, request and certificate removed (puppet ssl clean); one that does not answer is
    skipped, and said so. Where install_puppetdb put PuppetDB: their catalogs, facts and
    reports deleted there. On main: the certificates revoked and deleted; the compilers get
    the new CRL, so a revoked agent gets no catalog anywhere. certnames= purges agents the
    inventory no longer names (a host gone for good). Idempotent.

    Args:
        certnames: certnames to purge besides the targets' (comma-separated)
        main: the CA host: a target or group selecting exactly one
        compilers: the compilers that get the new CRL
    """
    ca = single(run, main, "main")
    agents = run.targets(targets) if targets else []
    servers = [ca, *run.targets(compilers)]
    node.validate([*agents, *servers], node.certname)
    doomed = purged_names(agents, list(certnames), servers)
    run.each("facts", gather, [ca])

    here = answering(run, agents)
    cohort = Cohort(run, here)
    cohort.each("facts", gather)
    cohort.pipeline([ServiceDisabled(AGENT_SERVICE), NodeSslCleaned()])
    pdb = installed_on(run, ca)
    if pdb is not None:
        run.step(NodesDeleted(doomed), [pdb])
    run.step(CertificatesCleaned(doomed), [ca])
    refresh_crl(run, ca, [t for t in servers if t != ca])

    gone = [t for t in agents if t not in here]
    if not gone:
        return None
    run.message(f"{PLAN}: {', '.join(t.name for t in gone)} did not answer: its agent was not "
                "stopped there and its SSL files stay (its certificate is revoked: no server "
                "accepts it); purged on the CA all the same")
    return Notes(messages={t.name: "unreachable: host-side steps skipped" for t in gone})
