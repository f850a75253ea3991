"""The ``remove_compiler`` plan: compilers taken out of the infrastructure for good, without
failing a single agent run.

    LB hosts     refuse if no other member would serve; record why the compiler goes;
                 drain, wait for its sessions to end, maintenance; out of the config, reload
    compiler     Puppet Server stopped and disabled (skipped, and said, when unreachable)
    main (CA)    certificate revoked and deleted; the webhook's inventory without it
    PuppetDB     off its certificate allow-list (where install_puppetdb put PuppetDB)
    compilers    the new CRL on the others (they check agents' certificates against it)

Every part is checked before it is changed, so a re-run after an interruption — or on a
compiler removed already — finishes what is left and reports the rest unchanged.
"""
from __future__ import annotations

from typing import Callable

from puppetops.errors import PlanFailure, StepError, UsageError
from puppetops.flow import Cohort, answering, changed, single
from puppetops.params import Seconds, TargetSpec
from puppetops.plan_registry import plan
from puppetops.puppet import node
from puppetops.result import Notes
from puppetops.run import Run
from puppetops.step import StepContext
from puppetops.steps.ca.revocation import CertificatesCleaned, refresh_crl
from puppetops.steps.facts import gather
from puppetops.steps.files import FileEditedBy
from puppetops.steps.lb import out_records, pool
from puppetops.steps.lb.backend import MAINT
from puppetops.steps.lb.membership import (MembersIdle, MembersOut, MembersRemoved, refusal,
                                           view)
from puppetops.steps.puppetdb.host import allow, installed_on
from puppetops.steps.puppetdb.server import Allowlist
from puppetops.steps.puppetserver_control import SERVICE, daemon
from puppetops.steps.services import ServiceDisabled
from puppetops.steps.webhook_files import PATHS as WEBHOOK, inventory_without
from puppetops.target import Target

PLAN = "remove_compiler"


def preflight(names: list[str]) -> Callable[[StepContext], list[str]]:
    """On one LB host: which of ``names`` it balances, once it is sure another member keeps
    serving without them (if not, the refusal says why each other one is not serving) and
    that some member stays in its config at all."""
    def check(ctx: StepContext) -> list[str]:
        found = view(ctx)
        present = [n for n in names if n in found.states]
        if not present:
            return []
        refused = refusal(found.states, present, found.records)
        if refused:
            raise StepError(refused)
        if not set(found.states) - set(present):
            raise StepError(f"refusing to remove {', '.join(present)}: no compiler would be left "
                            "behind this load balancer")
        return present
    return check


def leave_lbs(run: Run, names: list[str], lbs: list[Target], drain_timeout: float) -> None:
    """Out of every LB as rotate_lb_member takes a member out (recorded first, drained, idle,
    maintenance), then out of its config; any failure stops the plan, the compiler left out
    of load balancing with its record."""
    present = run.each("LB preflight", preflight(names), lbs)
    per_lb = {r.target: r.value for r in present}
    record = out_records.taken_by(run.id, PLAN, out_records.DECOMMISSIONED)
    with run.on_interrupt(lambda: run.message(f"{PLAN}: interrupted; {_left(names)}")):
        try:
            run.step(MembersOut(per_lb, record=record), lbs)
            run.step(MembersIdle(per_lb, wait=drain_timeout), lbs)
            run.step(MembersOut(per_lb, MAINT, record=record), lbs)
            run.step(MembersRemoved({t.name: names for t in lbs}), lbs)
        except PlanFailure:
            run.message(f"{PLAN}: stopped; {_left(names)}")
            raise


def _left(names: list[str]) -> str:
    return (f"{', '.join(names)} may be left out of load balancing (recorded on the LB hosts); "
            f"`invoke remove-compiler --targets {','.join(names)}` finishes removing "
            f"{'it' if len(names) == 1 else 'them'}")


def stop_servers(run: Run, compilers: list[Target]) -> list[Target]:
    """Puppet Server stopped and disabled on each compiler that answers; returns those that
    do not (gone for good: nothing to stop there)."""
    here = answering(run, compilers)
    cohort = Cohort(run, here)
    cohort.each("facts", gather)
    for compiler in cohort.live:
        cohort.step(ServiceDisabled(SERVICE, daemon=daemon(node.layout(compiler))), [compiler])
    return [t for t in compilers if t not in here]


def forget_in_webhook(run: Run, main: Target, leaving: list[Target]) -> None:
    """The webhook's inventory on main (install_webhook's) names them no more, so its next
    deploy leaves them out; nothing when no webhook is installed. The file keeps its owner
    (the webhook's user, or root where an older install_webhook ran it as root)."""
    gone = [t.name for t in leaving]
    run.step(FileEditedBy("webhook inventory", WEBHOOK.inventory,
                          lambda text: None if text is None else inventory_without(text, gone)),
             [main])


def leave_puppetdb(run: Run, main: Target, leaving: list[Target], restart: bool) -> None:
    """Off PuppetDB's certificate allow-list, where install_puppetdb installed it. PuppetDB
    reads the list only as it starts, and a restart takes it away for a minute or two — the
    servers' writes, and so agent runs, fail meanwhile — so it restarts only when asked
    (``restart``); otherwise the run says the change waits for its next restart."""
    pdb = installed_on(run, main)
    if pdb is None:
        return
    gone = [node.certname(t) for t in leaving]
    if restart:
        allow(run, pdb, [], gone)
    elif changed([run.step(Allowlist(remove=gone), [pdb])]):
        run.message(f"{PLAN}: {', '.join(gone)} off PuppetDB's allow-list on {pdb.name}; "
                    "PuppetDB reads it at its next start (puppetdb_restart=true restarts it "
                    "now: agent runs fail while it is down)")


@plan(main="main")
def remove_compiler(run: Run, targets: TargetSpec, main: TargetSpec = "main",
                    loadbalancers: TargetSpec = "loadbalancers",
                    compilers: TargetSpec = "compilers",
                    drain_timeout: Seconds = 600.0, puppetdb_restart: bool = False
                    ) -> Notes | None:
    """Remove compilers for good: out of every LB, Puppet Server stopped, certificate revoked.

    Refused (nothing changed) when no other member would be serving on an LB. On every LB:
    the removal recorded, drained, its sessions ended (drain_timeout), maintenance, then out
    of the config (reload). On each compiler: Puppet Server stopped and disabled at boot
    (skipped, and said, when the host does not answer). On main: its certificate revoked and
    deleted, and out of the webhook's inventory; the other compilers get the new CRL. Where
    install_puppetdb put PuppetDB: off its certificate allow-list, read at its next start.

    Idempotent: a re-run finishes an interrupted removal, and reports a removed compiler
    unchanged. ``main``: the CA, where the run holds the infrastructure lock.

    Args:
        main: the CA host: a target or group selecting exactly one
        loadbalancers: the load balancers to remove them from
        compilers: the compilers that stay get the new CRL (those removed are left out)
        drain_timeout: seconds to wait for a drained compiler's sessions to end
        puppetdb_restart: restart PuppetDB now so its allow-list drops them at once (a
            minute or two in which the servers' writes, and agent runs, fail)
    """
    ca = single(run, main, "main")
    leaving, lbs = run.targets(targets), run.targets(loadbalancers)
    node.validate(leaving, node.certname, pool.member)
    node.validate([ca], node.certname)
    if ca in leaving:
        raise UsageError(f"remove_compiler: {ca.name} is main, the CA: it is no compiler to remove")
    staying = [t for t in run.targets(compilers) if t not in leaving and t != ca]
    names = [pool.member(t).name for t in leaving]
    run.each("facts", gather, [ca, *lbs])
    try:
        leave_lbs(run, names, lbs, drain_timeout)
    except PlanFailure:
        return None  # the failed step is in the results; the summary reports it
    gone = stop_servers(run, leaving)
    run.step(CertificatesCleaned(node.certname(t) for t in leaving), [ca])
    forget_in_webhook(run, ca, leaving)
    leave_puppetdb(run, ca, leaving, puppetdb_restart)
    refresh_crl(run, ca, staying)
    run.message(f"{PLAN}: once removed, take {', '.join(t.name for t in leaving)} out of the "
                f"inventory's groups ({run.inventory.path}): configure_lb, add_compiler and "
                "install_puppetdb read them and would bring it back")
    if not gone:
        return None
    unreachable = ", ".join(t.name for t in gone)
    run.message(f"{PLAN}: {unreachable} did not answer: its Puppet Server was not stopped or "
                "disabled there (its certificate is revoked: it can serve no agent); removed "
                "from the load balancers and the CA all the same")
    return Notes(messages={t.name: "unreachable: host-side steps skipped" for t in gone})
