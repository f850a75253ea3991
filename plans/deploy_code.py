"""The ``deploy_code`` plan: control-repo environments on main and every compiler, the same
commit everywhere, then (and only then) Puppet Server's environment caches flushed."""
from __future__ import annotations

from typing import Annotated, Sequence

from puppetops.errors import StepError, UsageError
from puppetops.flow import single
from puppetops.params import Check, TargetSpec
from puppetops.plan_registry import plan
from puppetops.puppet import names, node
from puppetops.result import Notes
from puppetops.run import Run
from puppetops.step import StepContext
from puppetops.steps import puppetserver_control
from puppetops.steps.code import consistency, envcache
from puppetops.steps.code.consistency import ConsistencyVerdict
from puppetops.steps.code.deploy import (DeployerInstalled, EnvironmentCacheFlush,
                                         EnvironmentDeploy, deployed)
from puppetops.steps.code.deployers import Deployed
from puppetops.steps.code.heads import heads_command, read_heads
from puppetops.steps.code.purge import StaleEnvironmentsPurged
from puppetops.steps.facts import gather
from puppetops.steps.lb import out_records, pool
from puppetops.steps.lb.left_out import warn_leftovers
from puppetops.steps.lb.membership import LbView, MembersOut, MembersReady, view
from puppetops.target import Target

ALL = "all"
PLAN = "deploy_code"


def environment_list(spec: str | Sequence[str]) -> list[str] | None:
    """Validated environment names, or None for every branch. Refused (UsageError) before
    anything runs: a name must pass r10k's rule, so it can neither leave the environment
    directory nor reach a shell as anything but a word."""
    items = [e.strip() for e in (spec.split(",") if isinstance(spec, str) else spec)]
    items = [e for e in items if e]
    if items == [ALL]:
        return None
    if not items or ALL in items:
        raise UsageError("env: give environment names (a,b) or 'all' alone")
    return [names.environment(e) for e in dict.fromkeys(items)]


Environments = Annotated[str, Check(environment_list)]  # checked as the command line is read


def chosen_heads(wanted: list[str] | None, heads: dict[str, str], prefix: str = ""
                 ) -> tuple[dict[str, tuple[str, str]], list[str]]:
    """(environment → (its branch, the commit to deploy), branches skipped because r10k would
    refuse their environments' names). Under r10k's source prefix an environment is
    ``PREFIX_branch``; a named environment without a branch is a usage error."""
    if wanted is None:
        valid = names.environments_of(heads, prefix)
        return ({env: (branch, heads[branch]) for env, branch in valid.items()},
                sorted(set(heads) - set(valid.values())))
    chosen = {env: names.branch_of(env, prefix) for env in wanted}
    missing = [branch for branch in chosen.values() if branch not in heads]
    if missing:
        raise UsageError(f"the control repo has no branch {', '.join(missing)} "
                         f"(branches: {', '.join(sorted(heads)) or 'none'})")
    return {env: (branch, heads[branch]) for env, branch in chosen.items()}, []


def _members(run: Run, lbs: list[Target]) -> dict[str, LbView]:
    """LB host → its members and records, from the LB hosts that answered (one that did not
    fails its own result, not the deploy); members other runs left out are warned about."""
    if not lbs:
        return {}
    views = run.each("LB members", view, lbs, catch_errors=True)
    warn_leftovers(run, views)
    return {r.target: r.value for r in views.ok_set}


def _warn_uncached(run: Run, servers: list[Target]) -> None:
    """A warning for each server whose Puppet Server would serve new code before the flush
    (``envcache``): there, withholding the flush protects nothing."""
    found = run.each("environment cache setting", envcache.problem, servers, catch_errors=True)
    for r in found.ok_set:
        if r.value:
            run.message(f"deploy_code: warning: {r.target}: {r.value}")


def _drained(run: Run, servers: list[Target], verdict: ConsistencyVerdict) -> list[Target]:
    """The off servers to drain: those off for an environment their agents use (var
    ``agent_environments``); the others are named in a message and stay in."""
    def used_off(t: Target) -> list[str]:
        return [p.environment for p in verdict.of(t.name)
                if not p.ok and p.environment in node.agent_environments(t)]
    off = [t for t in servers if t.name in verdict.off]
    spared = [t for t in off if not used_off(t)]
    if spared:
        run.message("deploy_code: not draining " + ", ".join(t.name for t in spared)
                    + ": off only for environments no agents use there (agent_environments: "
                    + "; ".join(f"{t.name}: {','.join(node.agent_environments(t))}"
                                for t in spared) + ")")
    return [t for t in off if used_off(t)]


def _purge(run: Run, servers: list[Target], branches: dict[str, str], prefix: str) -> None:
    """Environments whose branch is gone leave every server (see steps.code.purge), each server's
    purge in its own result; a message lists what was purged where. A control repo that
    lists no branch at all purges nothing: that is a broken read, not a repo to mirror."""
    if not branches:
        run.message("deploy_code: the control repo lists no branches: purging nothing")
        return
    purged = run.step(StaleEnvironmentsPurged(names.environments_of(branches, prefix)), servers,
                      catch_errors=True)
    done = [f"{r.target}: {', '.join(r.value)}" for r in purged.ok_set if r.value]
    if done:
        verb = "would purge" if any(r.noop for r in purged) else "purged"
        run.message(f"deploy_code: {verb} environments whose branch is gone: " + "; ".join(done))


def _drain(run: Run, lbs: list[Target], servers: list[Target], verdict: ConsistencyVerdict,
           environments: list[str]) -> None:
    """The off servers that are LB members leave load balancing, unless that would leave an
    LB with no serving member (``MembersOut`` then refuses, and says so). Each LB host
    records that deploy_code drained them, for which environments, in which run."""
    off = {pool.member(t).name for t in servers if t.name in verdict.off}
    per_lb = {host: sorted(off & set(current.states))
              for host, current in _members(run, lbs).items()}
    chosen = [t for t in lbs if per_lb.get(t.name)]
    if chosen:
        record = out_records.taken_by(run.id, PLAN, out_records.CODE_DIFFERS, tuple(environments))
        run.step(MembersOut(per_lb, record=record), chosen, catch_errors=True)


def _put_back(run: Run, lbs: list[Target], servers: list[Target],
              environments: list[str]) -> None:
    """Members this plan drained earlier, for environments now consistent, serve again (and
    their records go)."""
    ours = {pool.member(t).name for t in servers}
    per_lb = {host: sorted(m for m, r in current.records.items()
                           if m in ours and m in current.states
                           and r.reason == out_records.CODE_DIFFERS
                           and set(r.environments) <= set(environments))
              for host, current in _members(run, lbs).items()}
    chosen = [t for t in lbs if per_lb.get(t.name)]
    if chosen:
        record = out_records.taken_by(run.id, PLAN, out_records.CODE_DIFFERS, tuple(environments))
        run.step(MembersReady(per_lb, record=record), chosen, catch_errors=True)


def _not_serving(ctx: StepContext) -> str | None:
    """Why the server's Puppet Server is not serving (None when it answers ``running``)."""
    certname = node.certname(ctx.target)
    if puppetserver_control.ready(ctx, certname):
        return None
    return f"Puppet Server does not answer {puppetserver_control.status_url(certname)}"


def _judge(run: Run, servers: list[Target], heads: dict[str, str],
           failures: dict[tuple[str, str], str],
           known: dict[str, dict[str, dict | None]]) -> ConsistencyVerdict:
    """The verdict over every server. ``known``: the records the deploy steps returned; a
    server missing one (its deploy failed or never ran) has all of its records read now. A
    server whose Puppet Server does not answer is off too: flushing its peers would have them
    serve the new code while it (started again, cache empty) might serve either."""
    answering = run.each("puppet server answers", _not_serving, servers, catch_errors=True)
    not_serving = {r.target: r.value for r in answering.ok_set if r.value}
    not_serving.update({r.target: r.message for r in answering.error_set})
    records = {name: dict(envs) for name, envs in known.items()}
    unknown = [t for t in servers if set(records.get(t.name, {})) != set(heads)]
    unreadable: dict[str, str] = {}
    if unknown:
        read = run.each("deployed commits", deployed(list(heads)), unknown, catch_errors=True)
        records.update({r.target: r.value for r in read.ok_set})
        unreadable = {r.target: r.message for r in read.error_set}
    verdict = consistency.judge(
        heads, [t.name for t in servers],
        {name: {e: Deployed(**d) if d else None for e, d in envs.items()}
         for name, envs in records.items() if name not in unreadable},
        failures, unreadable, not_serving)

    def same_code(ctx: StepContext) -> dict[str, str | None]:
        off = [p.describe() for p in verdict.of(ctx.target.name) if not p.ok]
        if off:
            raise StepError("; ".join(off))
        return verdict.commits(ctx.target.name)

    run.each("same code everywhere", same_code, servers, catch_errors=True)
    return verdict


def _stamps(records: dict[str, dict[str, dict | None]], env: str) -> dict[str, str]:
    """Server → the deploy of ``env`` its deploy step left there (would leave, in noop)."""
    return {server: Deployed(**envs[env]).stamp for server, envs in records.items()
            if envs.get(env)}


def where(verdict: ConsistencyVerdict) -> Notes:
    """What the summary says of each server: where it is for each environment, its commits."""
    judged = list(dict.fromkeys(p.server for p in verdict.positions))
    return Notes({t: "; ".join(p.describe() for p in verdict.of(t)) for t in judged},
                 {t: verdict.commits(t) for t in judged})


@plan(main="main")
def deploy_code(run: Run, env: Environments = "production", targets: TargetSpec = "main,compilers",
                main: TargetSpec = "main", loadbalancers: TargetSpec = "loadbalancers",
                modules: bool = False, incremental: bool = False, drain: bool = True) -> Notes:
    """Deploy code on main and every compiler; flush caches only if all have the same commit.

    Deploy environments (env: a name, a comma list, or all branches) with r10k or g10k
    (var code_deployer) on main and every compiler in parallel, each deploy followed by
    ``puppet generate types``; then, only if every server reports the same commit, flush
    each server's environment cache (admin API, its own certificate) and, with env=all,
    purge environments whose branch is gone (their caches flushed too). A server whose
    Puppet Server lacks environment_timeout = unlimited is warned about: there new code is
    served before any flush.

    If any server failed or differs: nothing is flushed or purged, the compilers off for an
    environment their agents use (var agent_environments, default production) are drained
    from the load balancers (drain=false: none), and the result names each server's commit.
    A later consistent run puts back the members it drained. Unchanged commits are neither
    redeployed nor flushed again; modules=true (Puppetfile modules, incremental=true for
    changed ones only) always runs the deployer. The commit is each branch's head when the
    plan starts.

    Args:
        env: environments: a name, a comma list, or all (every branch); under r10k's
            source prefix (var r10k_prefix) the names are PREFIX_branch
        main: the host with the control repo
        modules: also deploy Puppetfile modules (r10k -m; the deployer always runs)
        incremental: with modules: only changed or floating modules (r10k --incremental)
        drain: drain servers whose deploy failed or differs (default; --no-drain: leave them)
    """
    wanted = environment_list(env)
    ca = single(run, main, "main")
    prefix = node.environment_prefix(ca)
    servers, lbs = run.targets(targets), run.targets(loadbalancers)
    node.validate(servers, node.agent_environments)
    run.each("facts", gather, list(dict.fromkeys([ca, *servers, *lbs])))
    _warn_uncached(run, servers)
    found = run.each("control repo branches", read_heads(heads_command(ca)), [ca])[0].value
    chosen, skipped = chosen_heads(wanted, found, prefix)
    heads = {environment: commit for environment, (_, commit) in chosen.items()}
    if skipped:
        run.message(f"deploy_code: not deploying branches r10k would refuse: {', '.join(skipped)}")

    installed = run.step(DeployerInstalled(), servers, catch_errors=True)
    failures = {(r.target, env): f"no deployer: {r.message}"
                for r in installed.error_set for env in heads}
    ready = [t for t in servers if not installed.find(t.name) or installed.find(t.name).ok]
    records: dict[str, dict[str, dict | None]] = {t.name: {} for t in servers}
    for env, (branch, head) in chosen.items():
        deploys = run.step(EnvironmentDeploy(env, head, branch=branch, modules=modules,
                                             incremental=incremental), ready, catch_errors=True)
        failures.update({(r.target, env): r.message for r in deploys.error_set})
        for r in deploys.ok_set:
            records[r.target][env] = r.value

    verdict = _judge(run, servers, heads, failures, records)
    if verdict.consistent:
        run.message("deploy_code: every server has the same code:\n" + verdict.report())
        for env in heads:
            run.step(EnvironmentCacheFlush(env, _stamps(records, env)), servers,
                     catch_errors=True)
        if wanted is None:
            _purge(run, servers, found, prefix)
        _put_back(run, lbs, servers, list(heads))
    else:
        run.message("deploy_code: the servers differ, so no environment cache was flushed"
                    + (" and no stale environment purged" if wanted is None else "") + ":\n"
                    + verdict.report())
        if drain:
            _drain(run, lbs, _drained(run, servers, verdict), verdict, list(heads))
    return where(verdict)
