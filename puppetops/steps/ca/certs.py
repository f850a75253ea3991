"""Certificates: what a node has, what the CA has, and whether a request may be signed.

The security rules live here, in pure functions the plans cannot bypass:

* a request is signed only if its SHA-256 fingerprint on the CA equals the fingerprint of
  the node's own request file (read over our SSH connection — the out-of-band channel), so a
  CSR someone else submitted under that name is never signed;
* its alt names must equal the expected set exactly (no extra name, none missing);
* signing names the certnames (validated) — never ``--all`` — and the CA is told nothing
  else (no autosign anywhere).

Reading state costs no Ruby: openssl and test -f on the node; on the CA one curl run asks
the CA's API about every name at once (``ca_api``).
"""
from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from typing import Iterable, Mapping

from ...errors import StepError
from ...puppet import node
from ...puppet.layout import Layout
from ...step import StepContext
from . import ca_api

# what the CA may be asked to do about a node before it requests a certificate
KEEP, FETCH, REQUEST, REISSUE = "keep", "fetch", "request", "reissue"


def normalize(fingerprint: str) -> str:
    """``AB:CD:...`` in upper case, whatever the tool printed (``(SHA256) ab:cd``, ``=AB:CD``)."""
    hexdigits = re.sub(r"[^0-9A-Fa-f]", "", fingerprint.split(")")[-1].split("=")[-1])
    return ":".join(hexdigits[i:i + 2] for i in range(0, len(hexdigits), 2)).upper()


def dns(names_: Iterable[str]) -> frozenset[str]:
    """Alt names in the CA's notation: ``DNS:name``."""
    return frozenset(n if ":" in n else f"DNS:{n}" for n in names_)


def show(alt_names: Iterable[str]) -> str:
    return ", ".join(sorted(alt_names)) or "none"


@dataclass(frozen=True)
class Identity:
    """The certificate a node must end up with."""

    certname: str
    alt_names: tuple[str, ...] = ()  # dns_alt_names of its CSR (a compiler's: own FQDN + LB)

    @property
    def csr_alt_names(self) -> frozenset[str]:
        return dns(self.alt_names)

    @property
    def cert_alt_names(self) -> frozenset[str]:
        """The CA adds the certname itself to every certificate it signs."""
        return self.csr_alt_names | dns([self.certname])


# -- the node's side ------------------------------------------------------------------------

@dataclass(frozen=True)
class NodeCert:
    """A node's SSL state: its signed certificate (if any) and whether a CSR is pending."""

    fingerprint: str | None
    alt_names: frozenset[str]
    has_csr: bool


def cert_path(layout: Layout, certname: str) -> str:
    return f"{layout.ssldir}/certs/{certname}.pem"


def csr_path(layout: Layout, certname: str) -> str:
    return f"{layout.ssldir}/certificate_requests/{certname}.pem"


def node_state_command(layout: Layout, certname: str) -> str:
    c, r = shlex.quote(cert_path(layout, certname)), shlex.quote(csr_path(layout, certname))
    return (f"if [ -f {c} ]; then openssl x509 -in {c} -noout -fingerprint -sha256 "
            f"-ext subjectAltName; fi; if [ -f {r} ]; then echo csr=yes; fi")


def parse_node_state(text: str) -> NodeCert:
    fingerprint, alt = None, frozenset()
    for line in text.splitlines():
        if "Fingerprint=" in line:
            fingerprint = normalize(line)
        elif re.match(r"^\s+(DNS|IP( Address)?):", line):
            alt = frozenset(a.strip().replace("IP Address:", "IP:") for a in line.split(","))
    return NodeCert(fingerprint, alt if fingerprint else frozenset(), "csr=yes" in text.split())


def node_state(ctx: StepContext, layout: Layout, certname: str) -> NodeCert:
    return parse_node_state(ctx.run(node_state_command(layout, certname)).stdout)


# -- the CA's side --------------------------------------------------------------------------

@dataclass(frozen=True)
class CaEntry:
    """One certificate or request as the CA's certificate_status API shows it."""

    name: str
    state: str  # requested, signed or revoked
    fingerprint: str
    alt_names: frozenset[str]

    @classmethod
    def from_status(cls, status: dict) -> "CaEntry":
        alt = status.get("subject_alt_names") or status.get("dns_alt_names") or []
        sha = (status.get("fingerprints") or {}).get("SHA256") or status.get("fingerprint", "")
        return cls(status["name"], status.get("state", ""), normalize(sha), frozenset(alt))


def ca_list(ctx: StepContext, layout: Layout, certnames: Iterable[str]) -> dict[str, CaEntry]:
    """The CA's entries for ``certnames`` (names it does not know are absent); ``ctx`` runs
    on the CA host."""
    found = ca_api.statuses(ctx, layout, node.certname(ctx.target), certnames)
    return {status["name"]: CaEntry.from_status(status) for status in found}


def ca_clean(ctx: StepContext, layout: Layout, entries: Iterable[CaEntry]) -> None:
    """Revoke (when signed) and delete these certificates/requests on the CA, as
    ``puppetserver ca clean`` does; ``entries`` come from ``ca_list``."""
    ca_name = node.certname(ctx.target)
    entries = list(entries)
    signed = [e.name for e in entries if e.state == "signed"]
    if signed:
        _expect(ca_api.set_state(ctx, layout, ca_name, signed, "revoked"), "revoke")
    if entries:
        _expect(ca_api.delete(ctx, layout, ca_name, [e.name for e in entries]), "delete")


def _expect(replies: Mapping[str, tuple[int, str]], what: str) -> None:
    failed = {n: (code, body) for n, (code, body) in replies.items() if not 200 <= code < 300}
    if failed:
        raise StepError(f"the CA could not {what} " + "; ".join(
            f"{n} ({code}: {body.strip()[:120]})" for n, (code, body) in sorted(failed.items())))


# -- decisions ------------------------------------------------------------------------------

@dataclass(frozen=True)
class CertAction:
    """What to do about one node before signing: keep, fetch, request, or reissue; and
    whether the CA's entry for the name must be cleaned first."""

    kind: str
    reason: str = ""
    clean_ca: bool = False


def decide(node: NodeCert, entry: CaEntry | None, want: Identity) -> CertAction:
    """A correct certificate is left alone; a wrong one (alt names, unknown to the CA, not
    the CA's) is re-issued; a certificate the CA has but the node lacks is cleaned so the
    node can request a new one; a pending request is (re)submitted."""
    name = want.certname
    if node.fingerprint:
        if node.alt_names != want.cert_alt_names:
            return CertAction(REISSUE, f"its certificate has alt names {show(node.alt_names)}, "
                                       f"want {show(want.cert_alt_names)}", entry is not None)
        if entry is None or entry.state != "signed":
            state = "no record of it" if entry is None else f"it {entry.state}"
            return CertAction(REISSUE, f"the CA has {state}", entry is not None)
        if entry.fingerprint != node.fingerprint:
            return CertAction(REISSUE, "the CA signed a different certificate for "
                                       f"{name} ({entry.fingerprint})", True)
        return CertAction(KEEP)
    if entry is not None and entry.state == "signed" and node.has_csr:
        return CertAction(FETCH, "the CA has signed it")
    if entry is not None and entry.state in ("signed", "revoked"):
        return CertAction(REQUEST, f"the CA has a {entry.state} certificate for {name} that "
                                   "the node lacks", True)
    if entry is not None and not node.has_csr:
        return CertAction(REQUEST, f"the CA already holds a request for {name} "
                                   f"({entry.fingerprint}) that this node has no copy of")
    return CertAction(REQUEST)


@dataclass(frozen=True)
class SigningVerdict:
    """The CA-side answer for one request: signed now, already signed, or refused (why)."""

    certname: str
    sign: bool = False
    refusal: str | None = None


def review(want: Identity, fingerprint: str | None, entry: CaEntry | None) -> SigningVerdict:
    """Whether the CA may sign ``want.certname``'s pending request."""
    name = want.certname
    if entry is not None and entry.state == "signed":
        return SigningVerdict(name)
    if entry is None or entry.state != "requested":
        return SigningVerdict(name, refusal=f"the CA has no pending request for {name}")
    if not fingerprint:
        return SigningVerdict(name, refusal=f"{name} reports no certificate request of its own, "
                                             f"but the CA has one ({entry.fingerprint}): not signing it")
    if entry.fingerprint != normalize(fingerprint):
        return SigningVerdict(name, refusal=(
            f"NOT signing {name}: the CA's pending request has fingerprint {entry.fingerprint} "
            f"but {name} itself reports {normalize(fingerprint)}; the request on the CA was not "
            "made with this node's key (regenerated or submitted by someone else). Check it, then "
            f"`puppetserver ca clean --certname {name}` on the CA and re-run"))
    if entry.alt_names != want.csr_alt_names:
        return SigningVerdict(name, refusal=(
            f"NOT signing {name}: its request asks for alt names {show(entry.alt_names)}, "
            f"expected exactly {show(want.csr_alt_names)}"))
    return SigningVerdict(name, sign=True)


def sign(ctx: StepContext, layout: Layout, wanted: Mapping[str, tuple[Identity, str | None]]
         ) -> dict[str, SigningVerdict]:
    """Review every pending request on the CA and sign the approved ones in ONE call (one
    curl, one TLS connection, a PUT per name: milliseconds, see ``ca_api``).

    ``wanted``: certname → (identity, the node's own fingerprint).
    """
    entries = ca_list(ctx, layout, wanted)
    verdicts = {name: review(want, fp, entries.get(name)) for name, (want, fp) in wanted.items()}
    approved = [n for n, v in verdicts.items() if v.sign]
    if approved:
        replies = ca_api.set_state(ctx, layout, node.certname(ctx.target), approved, "signed")
        for name, (code, body) in replies.items():
            if code != 204:  # the CA's answer to a signature it made
                verdicts[name] = SigningVerdict(name, refusal=f"the CA did not sign {name}: "
                                                              f"{code} {body.strip()[:200]}")
    return verdicts
