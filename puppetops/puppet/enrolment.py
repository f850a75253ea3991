"""Give many nodes CA-signed certificates at once: the flow shared by add_compiler and
enroll_agent.

    nodes (parallel)   inspect their certificate and pending request (no Ruby)
    CA                 one `ca list` for all; clean what must be re-issued (one call)
    nodes (parallel)   clean a wrong certificate, submit a request
    nodes (parallel)   report their own fingerprint (`puppet agent --fingerprint`)
    CA                 compare fingerprints and alt names; sign the good ones in ONE call
    nodes              a refused node fails, saying why; the others download and verify

Lockstep between the phases is what the CA needs (one list, one sign for all); within a
phase the nodes run in parallel.
"""
from __future__ import annotations

import shlex
from typing import Mapping

from ..errors import StepError
from ..result import CHANGED, UNCHANGED
from ..step import Outcome, Step, StepContext
from ..target import Target
from . import certs, names, node
from .flow import Cohort
from .layout import Layout

KEEPALIVE = "--http_keepalive_timeout 0"  # lab P4: without it submit_request stalls ~30 s


def _puppet_ssl(ctx: StepContext, action: str, certname: str) -> str:
    layout = node.layout(ctx.target)
    return (f"{shlex.quote(layout.puppet)} ssl {action} --certname "
            f"{shlex.quote(names.certname(certname))} {KEEPALIVE}")


class CertificateRequested(Step):
    """Node side: a node that needs a certificate has a request on the CA (after cleaning a
    wrong certificate away)."""

    name = "certificate request"

    def __init__(self, identities: Mapping[str, certs.Identity],
                 actions: Mapping[str, certs.Action]):
        super().__init__()
        self.identities, self.actions = identities, actions

    def check(self, ctx: StepContext) -> str | None:
        action = self.actions[ctx.target.name]
        if action.kind == certs.REISSUE:
            return f"re-issue the certificate: {action.reason}"
        if action.kind == certs.REQUEST:
            return "submit a certificate request" + (f" ({action.reason})" if action.reason else "")
        return None

    def change(self, ctx: StepContext) -> None:
        certname = self.identities[ctx.target.name].certname
        action = self.actions[ctx.target.name]
        if action.kind == certs.REISSUE:
            ctx.run(_puppet_ssl(ctx, "clean", certname))
        out = ctx.run(_puppet_ssl(ctx, "submit_request", certname), check=False)
        if out.ok:
            return
        if "conflict" not in out.stdout + out.stderr:
            raise StepError("puppet ssl submit_request failed: "
                            f"{(out.stderr or out.stdout).strip()}", exit_code=out.exit_code)
        # The CA already holds a request for this name: ours from an earlier run (we have
        # its copy, and the fingerprint check decides), or one we cannot vouch for.
        if not certs.node_state(ctx, node.layout(ctx.target), certname).has_csr:
            raise StepError(f"NOT signing {certname}: {action.reason or 'the CA holds a request'}; "
                            "the node's own request was refused as a conflict, so nothing proves "
                            "the CA's request came from this node. Check it, then "
                            f"`puppetserver ca clean --certname {certname}` on the CA and re-run")

    def verify(self, ctx: StepContext) -> None:
        layout = node.layout(ctx.target)
        if not certs.node_state(ctx, layout, self.identities[ctx.target.name].certname).has_csr:
            raise StepError("no certificate request on the node after submitting one")


class CertificateInstalled(Step):
    """Node side: the signed certificate is on the node and verifies against the CA."""

    name = "certificate installed"

    def __init__(self, identities: Mapping[str, certs.Identity]):
        super().__init__()
        self.identities = identities

    def check(self, ctx: StepContext) -> str | None:
        layout = node.layout(ctx.target)
        certname = self.identities[ctx.target.name].certname
        if certs.node_state(ctx, layout, certname).fingerprint:
            return None
        return "download the signed certificate"

    def change(self, ctx: StepContext) -> None:
        ctx.run(_puppet_ssl(ctx, "download_cert", self.identities[ctx.target.name].certname))

    def verify(self, ctx: StepContext) -> None:
        ctx.run(_puppet_ssl(ctx, "verify", self.identities[ctx.target.name].certname))


def enrol(cohort: Cohort, main: Target, identities: Mapping[str, certs.Identity]) -> set[str]:
    """Bring every live member of ``cohort`` to a signed certificate matching its identity.

    ``identities``: target name → Identity. Returns the names of the targets that got a new
    certificate (a running server must then reload to use it). A node whose request may not
    be signed leaves the cohort, failed, with the reason.
    """
    run, ca = cohort.run, node.layout(main)

    seen = cohort.each("inspect certificate", lambda ctx: certs.node_state(
        ctx, node.layout(ctx.target), identities[ctx.target.name].certname))
    nodes = {r.target: r.value for r in seen.ok_set}
    if not nodes:
        return set()

    def plan_actions(ctx: StepContext) -> Outcome:
        entries = certs.ca_list(ctx, ca, [identities[t].certname for t in nodes])
        actions = {t: certs.decide(state, entries.get(identities[t].certname), identities[t])
                   for t, state in nodes.items()}
        dirty = [identities[t].certname for t, a in actions.items() if a.clean_ca]
        if not dirty:
            return Outcome(UNCHANGED, value=actions)
        if not ctx.noop:
            certs.ca_clean(ctx, ca, dirty)
        return Outcome(CHANGED, f"clean {', '.join(dirty)} on the CA", value=actions)

    actions = run.each("review certificates on the CA", plan_actions, [main])[0].value
    cohort.step(CertificateRequested(identities, actions))

    pending = [t for t in cohort.live if actions[t.name].kind != certs.KEEP]
    if pending:
        # in noop a node without a request stays without one: nothing to read (and puppet
        # would create its ssldir just to say so)
        readable = [t for t in pending if not run.noop or nodes[t.name].has_csr]
        own = cohort.each("read own fingerprint", lambda ctx: certs.own_fingerprint(
            ctx, node.layout(ctx.target), identities[ctx.target.name].certname), only=readable)
        fingerprints = {t.name: None for t in pending if t.name not in {r.target for r in own}}
        fingerprints.update({r.target: r.value for r in own.ok_set})
        signing = run.each("sign certificates on the CA",
                           lambda ctx: _sign(ctx, ca, identities, fingerprints), [main])
        verdicts = signing[0].value
        refused = {t: verdicts[identities[t].certname].refusal for t in fingerprints
                   if identities[t].certname in verdicts
                   and verdicts[identities[t].certname].refusal}

        def refuse(ctx: StepContext) -> None:
            raise StepError(refused[ctx.target.name])

        cohort.each("certificate approval", refuse,
                    only=[t for t in cohort.live if t.name in refused])

    installed = cohort.step(CertificateInstalled(identities))
    return {r.target for r in installed if r.status == CHANGED}


def _sign(ctx: StepContext, ca: Layout, identities: Mapping[str, certs.Identity],
          fingerprints: Mapping[str, str | None]) -> Outcome:
    """The CA's step: review and sign. In noop, a node that has not submitted its request yet
    (it would have, in a real run) is reported as "would sign after checking"."""
    wanted = {identities[t].certname: (identities[t], fp) for t, fp in fingerprints.items()
              if fp or not ctx.noop}
    unsubmitted = [t for t, fp in fingerprints.items() if not fp and ctx.noop]
    verdicts = certs.sign(ctx, ca, wanted) if wanted else {}
    signed = sorted(n for n, v in verdicts.items() if v.sign)
    parts = [f"{'would sign' if ctx.noop else 'signed'} {', '.join(signed)}"] if signed else []
    if unsubmitted:
        parts.append(f"would sign {len(unsubmitted)} new request(s) after checking their "
                     "fingerprints")
    return Outcome(CHANGED if parts else UNCHANGED, "; ".join(parts), value=verdicts)
