"""Certificates taken back, for hosts leaving the infrastructure: revoked and deleted on the
CA, the CRL that says so on the servers that check agents' certificates, and the node's own
SSL files gone.

The CA's side is what ``puppetserver ca clean --certname`` does (revoke a signed certificate,
then delete it or the pending request), done over the CA's REST API (``ca_api``): one curl
run for every name, no Ruby, and none of the CLI's quirks — it stalls on every call on
Debian 12 and exits 24 after cleaning a pending request (docs/puppet-pitfalls.md).
"""
from __future__ import annotations

import shlex
from typing import Callable, Iterable

from ...errors import StepError
from ...flow import Cohort
from ...puppet import csr, names, node
from ...run import Run
from ...step import Finding, Step, StepContext
from ...target import Target
from ..facts import gather
from . import certs
from .enrolment import CaTrusted


class CertificatesCleaned(Step):
    """On the CA host: the CA has no certificate and no request for any of ``certnames``.
    A signed certificate is revoked first (its serial goes into the CA's CRL), then deleted;
    a revoked one or a pending request is deleted."""

    name = "certificates revoked and cleaned"

    def __init__(self, certnames: Iterable[str]):
        super().__init__()
        self.certnames = names.certnames(sorted(set(certnames)))

    def find(self, ctx: StepContext) -> Finding:
        entries = certs.ca_list(ctx, node.layout(ctx.target), self.certnames)
        if not entries:
            return Finding(None)
        what = {"signed": "revoke and delete the certificate of",
                "revoked": "delete the revoked certificate of",
                "requested": "delete the pending request of"}
        todo = "; ".join(f"{what.get(e.state, f'delete the {e.state} entry of')} {n}"
                         for n, e in sorted(entries.items()))
        return Finding(todo, state=list(entries.values()))

    def apply(self, ctx: StepContext, found: Finding) -> None:
        certs.ca_clean(ctx, node.layout(ctx.target), found.state)
        left = self.find(ctx).todo
        if left:
            raise StepError(f"the CA still has entries after cleaning: {left}")


def refresh_crl(run: Run, main: Target, servers: list[Target]) -> None:
    """The CA's CRL, read on ``main``, on each of ``servers``: a compiler's Puppet Server
    checks agents' certificates against its own copy (it has no CA to make one), so until
    it has the new one a revoked certificate still works there. A server that fails is
    reported; the others still get it."""
    if not servers:
        return
    crl = run.each("read the CRL", _read_crl, [main])[0].value
    cohort = Cohort(run, servers)
    cohort.each("facts", gather)
    step = CaTrusted({"crl.pem": crl})
    step.name = f"CRL from {main.name}"
    cohort.step(step)


def _read_crl(ctx: StepContext) -> str:
    """The CA's CRL, read on the CA host (after a revocation: it lists the new serial)."""
    path = f"{node.layout(ctx.target).cadir}/ca_crl.pem"
    text = ctx.read(path)
    if text is None:
        raise StepError(f"no CRL at {path} on {ctx.target.name}: is it the CA?")
    return text


class NodeSslCleaned(Step):
    """On the node itself: its key, request and certificate are gone (``puppet ssl clean``,
    done with rm: no Ruby), so nothing on it can still authenticate as ``certname(target)``."""

    name = "SSL files cleaned"

    def __init__(self, certname: Callable[[Target], str] = node.certname):
        super().__init__()
        self.certname = certname

    def _present(self, ctx: StepContext) -> list[str]:
        layout, name = node.layout(ctx.target), names.certname(self.certname(ctx.target))
        paths = [certs.cert_path(layout, name), certs.csr_path(layout, name),
                 f"{layout.ssldir}/private_keys/{name}.pem"]
        out = ctx.run("for f in " + " ".join(shlex.quote(p) for p in paths)
                      + '; do [ -e "$f" ] && echo "$f"; done; true')
        return out.stdout.split()

    def check(self, ctx: StepContext) -> str | None:
        present = self._present(ctx)
        return f"remove {', '.join(present)}" if present else None

    def change(self, ctx: StepContext) -> None:
        ctx.run(csr.clean_script(node.layout(ctx.target), self.certname(ctx.target)))
