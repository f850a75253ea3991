"""Give many nodes CA-signed certificates at once: the flow shared by add_compiler and
enroll_agent.

    nodes (parallel)   inspect their certificate and pending request
    CA                 one status call for all; clean what must be re-issued (one call)
    nodes (parallel)   get the CA bundle and CRL read on the CA (over SSH, not trust on
                       first use); clean a wrong certificate, make a key and a request
    nodes (parallel)   their request is read (over SSH: the out-of-band channel)
    CA                 submit them all in ONE call; compare fingerprints and alt names;
                       sign the good ones in ONE call; read the certificates in ONE call
    nodes              a refused node fails, saying why; the others install and verify

No step starts Ruby: openssl on the nodes (``csr``), curl against the CA's API on the CA
host (``ca_api``). Every request, certificate and CA file travels over our SSH connections,
so a node needs no connection to the CA to enrol, and the CA's JVM makes one TLS handshake
per call instead of two per node.

Lockstep between the phases is what the CA needs (one list, one sign for all); within a
phase the nodes run in parallel.
"""
from __future__ import annotations

import hashlib
import shlex
from typing import Callable, Mapping

from ...errors import StepError
from ...flow import Cohort, single
from ...puppet import csr, names, node
from ...puppet.layout import Layout
from ...result import CHANGED
from ...run import Run, TargetSpec
from ...step import Finding, Step, StepContext
from ...target import Target
from ..facts import gather
from ..preflight import preflight
from ..puppetserver import require_ready
from . import ca_api, certs

KEEPALIVE = "--http_keepalive_timeout 0"  # lab P4: without it submit_request stalls ~30 s
CONFLICT = "already has a requested certificate"  # the CA's answer when a request is pending


def _submit_with_puppet(ctx: StepContext, certname: str) -> None:
    """The node has a csr_attributes.yaml: Puppet writes the request. When the CA already
    holds one, Puppet saves no local copy (docs/puppet-pitfalls.md), so nothing proves it is this node's."""
    layout = node.layout(ctx.target)
    out = ctx.run(f"{shlex.quote(layout.puppet)} ssl submit_request --certname "
                  f"{shlex.quote(names.certname(certname))} {KEEPALIVE}", check=False)
    if out.ok:
        return
    if "conflict" not in out.stdout + out.stderr:
        raise StepError("puppet ssl submit_request failed: "
                        f"{(out.stderr or out.stdout).strip()}", exit_code=out.exit_code)
    if not certs.node_state(ctx, layout, certname).has_csr:
        raise StepError(f"NOT signing {certname}: the CA holds a request; the node's own "
                        "request was refused as a conflict, so nothing proves the CA's request "
                        f"came from this node. Check it, then `puppetserver ca clean --certname "
                        f"{certname}` on the CA and re-run")


class CaTrusted(Step):
    """Node side: the node has the CA's certificate bundle and CRL, as read on the CA host.

    Puppet's own bootstrap downloads them trusting whatever answers first; here they come
    over the SSH connection to the CA host, whose host key was verified.
    """

    name = "CA certificate"

    def __init__(self, bundle: Mapping[str, str]):
        super().__init__()
        self.bundle = bundle  # file under ssldir ("certs/ca.pem", "crl.pem") → content

    def _stale(self, ctx: StepContext) -> list[str]:
        ssldir = node.layout(ctx.target).ssldir
        paths = " ".join(shlex.quote(f"{ssldir}/{f}") for f in self.bundle)
        have = {}
        for line in ctx.run(f"sha256sum {paths} 2>/dev/null || true").stdout.splitlines():
            digest, _, path = line.partition("  ")
            have[path[len(ssldir) + 1:]] = digest
        return [f for f, text in self.bundle.items()
                if have.get(f) != hashlib.sha256(text.encode()).hexdigest()]

    def check(self, ctx: StepContext) -> str | None:
        stale = self._stale(ctx)
        return f"install {', '.join(stale)} from the CA" if stale else None

    def change(self, ctx: StepContext) -> None:
        # the check just found them stale; rewriting an unchanged one is harmless and spares
        # a second read
        ctx.run(csr.bundle_script(node.layout(ctx.target), self.bundle))

    def verify(self, ctx: StepContext) -> None:
        if self._stale(ctx):
            raise StepError("the CA bundle on the node still differs from the CA's")


def ca_bundle(ctx: StepContext) -> dict[str, str]:
    """The CA host's certificate bundle and CRL, keyed by where they go under a node's ssldir."""
    cadir = node.layout(ctx.target).cadir
    found = {"certs/ca.pem": ctx.read(f"{cadir}/ca_crt.pem"),
             "crl.pem": ctx.read(f"{cadir}/ca_crl.pem")}
    missing = [f for f, text in found.items() if text is None]
    if missing:
        raise StepError(f"no CA under {cadir} on {ctx.target.name}: run bootstrap_ca first")
    return found


class CertificateRequested(Step):
    """Node side: a node that needs a certificate has a key and a request (after cleaning a
    wrong certificate away); the CA's step submits it."""

    name = "certificate request"

    def __init__(self, identities: Mapping[str, certs.Identity],
                 actions: Mapping[str, certs.CertAction]):
        super().__init__()
        self.identities, self.actions = identities, actions

    def check(self, ctx: StepContext) -> str | None:
        action = self.actions[ctx.target.name]
        if action.kind == certs.REISSUE:
            return f"re-issue the certificate: {action.reason}"
        if action.kind == certs.REQUEST:
            return "request a certificate" + (f" ({action.reason})" if action.reason else "")
        return None

    def change(self, ctx: StepContext) -> None:
        layout = node.layout(ctx.target)
        identity = self.identities[ctx.target.name]
        if self.actions[ctx.target.name].kind == certs.REISSUE:
            ctx.run(csr.clean_script(layout, identity.certname))
        made = ctx.run(csr.request_script(layout, identity.certname, identity.alt_names,
                                          node.cert_key(ctx.target), layout.confdir), check=False)
        if made.exit_code == csr.NEEDS_PUPPET:
            _submit_with_puppet(ctx, identity.certname)
        elif not made.ok:
            raise StepError(f"making the key and request failed: {made.stderr.strip()}",
                            exit_code=made.exit_code)

    def verify(self, ctx: StepContext) -> None:
        layout = node.layout(ctx.target)
        if not certs.node_state(ctx, layout, self.identities[ctx.target.name].certname).has_csr:
            raise StepError("no certificate request on the node after making one")


class CertificateInstalled(Step):
    """Node side: the signed certificate is on the node and verifies against the CA."""

    name = "certificate installed"

    def __init__(self, identities: Mapping[str, certs.Identity], issued: Mapping[str, str]):
        super().__init__()
        self.identities, self.issued = identities, issued  # certname → PEM, read on the CA

    def check(self, ctx: StepContext) -> str | None:
        layout = node.layout(ctx.target)
        certname = self.identities[ctx.target.name].certname
        if certs.node_state(ctx, layout, certname).fingerprint:
            return None
        return "install the signed certificate"

    def change(self, ctx: StepContext) -> None:
        certname = self.identities[ctx.target.name].certname
        if certname not in self.issued:
            raise StepError(f"the CA has no signed certificate for {certname}")
        ctx.run(csr.install_script(node.layout(ctx.target), certname, self.issued[certname]))

    def verify(self, ctx: StepContext) -> None:
        ctx.run(csr.verify_command(node.layout(ctx.target),
                                   self.identities[ctx.target.name].certname))


class CaReviewed(Step):
    """CA side: each node's certificate and request against the CA's records (one status call
    for all) decide what it needs (``certs.decide``: the value, target → ``CertAction``); CA
    entries that must go before a node can request again are cleaned (one call)."""

    name = "review certificates on the CA"

    def __init__(self, ca: Layout, identities: Mapping[str, certs.Identity],
                 nodes: Mapping[str, certs.NodeCert]):
        super().__init__()
        self.ca, self.identities, self.nodes = ca, identities, nodes

    def find(self, ctx: StepContext) -> Finding:
        entries = certs.ca_list(ctx, self.ca, [self.identities[t].certname for t in self.nodes])
        actions = {t: certs.decide(state, entries.get(self.identities[t].certname),
                                   self.identities[t]) for t, state in self.nodes.items()}
        dirty = [entries[self.identities[t].certname] for t, a in actions.items() if a.clean_ca]
        todo = f"clean {', '.join(e.name for e in dirty)} on the CA" if dirty else None
        return Finding(todo, dirty, actions)

    def apply(self, ctx: StepContext, found: Finding) -> None:
        certs.ca_clean(ctx, self.ca, found.state)


class RequestsSigned(Step):
    """CA side: the nodes' requests (read from them over SSH) submitted in one call, reviewed
    against each node's own fingerprint and identity, the approved ones signed in one call,
    and the certificates read back in one call. The value: (certname → ``SigningVerdict``,
    certname → certificate PEM).

    ``requests``: target → its request (None: it has none — a node that makes one only when
    the run changes things); ``fetch``: targets whose request the CA signed already. What the
    CA holds is read first: requests it lacks are to be submitted and signed, those pending
    with the node's own fingerprint and identity to be signed, the others are refused."""

    name = "sign certificates on the CA"

    def __init__(self, ca: Layout, identities: Mapping[str, certs.Identity],
                 requests: Mapping[str, str | None], fetch: set[str]):
        super().__init__()
        self.ca, self.identities, self.requests, self.fetch = ca, identities, requests, fetch

    def _wanted(self, with_request: bool) -> dict[str, tuple[certs.Identity, str | None]]:
        return {self.identities[t].certname: (self.identities[t], _fingerprint(pem))
                for t, pem in self.requests.items() if pem or not with_request}

    def _mine(self) -> dict[str, str]:
        """certname → request, for the requests this run submits (not those signed already)."""
        return {self.identities[t].certname: pem for t, pem in self.requests.items()
                if pem and t not in self.fetch}

    def find(self, ctx: StepContext) -> Finding:
        made = self._wanted(with_request=True)
        entries = certs.ca_list(ctx, self.ca, made) if made else {}
        new = sorted(n for n in self._mine() if n not in entries)
        verdicts = {n: certs.review(want, fp, entries.get(n))
                    for n, (want, fp) in made.items() if n not in new}
        signing = sorted(n for n, v in verdicts.items() if v.sign) + new
        unmade = [t for t, pem in self.requests.items() if not pem]
        parts = [f"sign {', '.join(signing)}"] if signing else []
        if unmade:
            parts.append(f"sign {len(unmade)} new request(s) after checking their fingerprints")
        if parts:
            return Finding("; ".join(parts), value=(verdicts, {}))
        return Finding(None, value=(verdicts, self._issued(ctx, verdicts)))

    def _issued(self, ctx: StepContext, verdicts: Mapping[str, certs.SigningVerdict]
                ) -> dict[str, str]:
        ready = [n for n, v in verdicts.items() if not v.refusal]
        return ca_api.certificates(ctx, self.ca, node.certname(ctx.target), ready) if ready else {}

    def apply(self, ctx: StepContext, found: Finding) -> tuple[dict, dict]:
        mine = self._mine()
        if mine:
            answers = ca_api.submit(ctx, self.ca, node.certname(ctx.target), mine)
            failed = {n: a for n, a in answers.items() if a[0] != 200 and CONFLICT not in a[1]}
            if failed:
                raise StepError("the CA refused certificate requests: " + "; ".join(
                    f"{n} ({code}: {body.strip()[:120]})"
                    for n, (code, body) in sorted(failed.items())))
        verdicts = certs.sign(ctx, self.ca, self._wanted(with_request=False))
        return verdicts, self._issued(ctx, verdicts)


def newcomers(run: Run, targets: TargetSpec, main: TargetSpec,
              *checks: Callable[[Target], object]) -> tuple[Target, Cohort]:
    """What add_compiler and enroll_agent do before they change anything: ``main`` (the CA,
    exactly one target) and the hosts to enrol (``targets``) as a cohort. Bad input is a
    usage error before any host is contacted: each newcomer's certname, lb_name, ``checks``
    (the vars its own plan reads) and key settings, main's certname. Then main's Puppet
    Server must be ready (nothing can be signed otherwise: that stops the plan), and each
    newcomer gives its facts and passes preflight (one that fails drops out, the others go
    on). Returns (main, the cohort)."""
    ca = single(run, main, "main")
    cohort = Cohort(run, run.targets(targets))
    node.validate(cohort.members, node.certname, node.lb_name, *checks, node.cert_key)
    node.validate([ca], node.certname)
    run.each("facts", gather, [ca])
    run.each("main ready", require_ready, [ca])

    cohort.each("facts", gather)
    cohort.each("preflight", preflight)
    return ca, cohort


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

    actions = run.step(CaReviewed(ca, identities, nodes), [main])[0].value
    cohort.step(CaTrusted(run.each("read the CA bundle", ca_bundle, [main])[0].value))
    cohort.step(CertificateRequested(identities, actions))

    issued: dict[str, str] = {}
    pending = [t for t in cohort.live if actions[t.name].kind != certs.KEEP]
    if pending:
        own = cohort.each("read own request", lambda ctx: ctx.read(
            certs.csr_path(node.layout(ctx.target), identities[ctx.target.name].certname)),
            only=pending)
        requests = {r.target: r.value for r in own.ok_set}
        fetch = {t for t in requests if actions[t].kind == certs.FETCH}  # signed already
        signing = run.step(RequestsSigned(ca, identities, requests, fetch), [main])
        verdicts, issued = signing[0].value
        refused = {t: verdicts[identities[t].certname].refusal for t in requests
                   if identities[t].certname in verdicts
                   and verdicts[identities[t].certname].refusal}

        def refuse(ctx: StepContext) -> None:
            raise StepError(refused[ctx.target.name])

        cohort.each("certificate approval", refuse,
                    only=[t for t in cohort.live if t.name in refused])

    installed = cohort.step(CertificateInstalled(identities, issued))
    return {r.target for r in installed if r.status == CHANGED}


def _fingerprint(pem: str | None) -> str | None:
    if not pem:
        return None
    try:
        return csr.request_fingerprint(pem)
    except ValueError:
        return None  # not a request: refused as "no request of its own"
