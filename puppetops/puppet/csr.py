"""A node's key, certificate request and certificate, made and checked with openssl: no Ruby.

``puppet ssl submit_request`` / ``download_cert`` / ``agent --fingerprint`` each start Ruby
on the node, and that start-up was most of what many agents enrolling at once cost
(docs/benchmarks.md, "What changed in enrolment"). The files written here are exactly the ones Puppet reads and writes itself (same
paths under ``ssldir``, same modes, owned by the ``puppet`` user where it exists), so a later
``puppet agent`` run or Puppet Server on a compiler uses them unchanged.

Two things differ from Puppet's own bootstrap, both on purpose:

* the CA bundle and CRL are copied from the CA host over our SSH connection (authenticated by
  its host key) instead of Puppet's trust-on-first-use download, and so are the request (to
  the CA, submitted there with all the others in one call) and the signed certificate (back):
  the node needs no connection to the CA to enrol;
* when the node has a ``csr_attributes.yaml`` (custom attributes, extension requests), the
  request is left to ``puppet ssl submit_request``, which knows that file's semantics (and
  then the key is RSA: Puppet 7 on OpenSSL 3 fails on an EC key there).
"""
from __future__ import annotations

import base64
import hashlib
import shlex
from dataclasses import dataclass

from . import names
from .layout import Layout

NEEDS_PUPPET = 3  # exit status of request_script: csr_attributes.yaml present


@dataclass(frozen=True)
class KeySpec:
    """The private key a node gets: ``rsa`` with ``size`` bits, or ``ec`` on ``curve``."""

    type: str = "rsa"
    size: int = 4096
    curve: str = "prime256v1"

    def genpkey(self, path: str) -> str:
        if self.type == "ec":
            opts = f"-algorithm EC -pkeyopt ec_paramgen_curve:{self.curve} " \
                   "-pkeyopt ec_param_enc:named_curve"
        else:
            opts = f"-algorithm RSA -pkeyopt rsa_keygen_bits:{int(self.size)}"
        return f"openssl genpkey {opts} -out {path}"


def prepare_dirs(layout: Layout) -> str:
    """Shell helpers, and the ssldir folders as Puppet makes them (ssldir 0771, private_keys
    0750, the rest 0755), owned by the ``puppet`` user where there is one."""
    return "\n".join([
        "set -e", f"S={shlex.quote(layout.ssldir)}",
        'own() { if id -u puppet >/dev/null 2>&1; then chown puppet:puppet "$@"; fi; }',
        'dir() { [ -d "$1" ] || { mkdir -p -m "$2" "$1"; own "$1"; }; }',
        'dir "$S" 771; dir "$S/certs" 755; dir "$S/certificate_requests" 755',
        'dir "$S/public_keys" 755; dir "$S/private_keys" 750',
    ])


def _prelude(layout: Layout, certname: str) -> str:
    """What every script about one certname starts with: the folders and its file names."""
    return "\n".join([
        prepare_dirs(layout), f"N={shlex.quote(names.certname(certname))}",
        'KEY="$S/private_keys/$N.pem"; CSR="$S/certificate_requests/$N.pem"',
        'CERT="$S/certs/$N.pem"',
    ])


def clean_script(layout: Layout, certname: str) -> str:
    """Forget the node's key, request and certificate (``puppet ssl clean``)."""
    return _prelude(layout, certname) + '\nrm -f "$KEY" "$CSR" "$CERT" "$S/public_keys/$N.pem"'


def request_script(layout: Layout, certname: str, alt_names: tuple[str, ...], key: KeySpec,
                   confdir: str) -> str:
    """Make the key (when missing) and the request (when missing: a pending request on the CA
    may be this very file, and a new ECDSA signature would change its fingerprint). Exits
    ``NEEDS_PUPPET`` when ``csr_attributes.yaml`` asks for what only Puppet writes."""
    attrs = shlex.quote(f"{confdir}/csr_attributes.yaml")
    san = ",".join(f"DNS:{names.certname(a)}" for a in alt_names)
    addext = f" -addext {shlex.quote('subjectAltName=' + san)}" if san else ""
    return "\n".join([
        _prelude(layout, certname),
        # Puppet 7 on OpenSSL 3 cannot make a request from a non-RSA key ("pkeys are
        # immutable"): such a key and its request go, and Puppet makes an RSA key
        f"if [ -e {attrs} ]; then",
        '  if [ -s "$KEY" ] && ! openssl rsa -in "$KEY" -noout 2>/dev/null; then '
        'rm -f "$KEY" "$CSR"; fi',
        f"  exit {NEEDS_PUPPET}; fi",
        'if [ ! -s "$KEY" ]; then (umask 027; ' + key.genpkey('"$KEY.tmp"') + ' 2>/dev/null)',
        '  own "$KEY.tmp"; mv -f "$KEY.tmp" "$KEY"; fi',
        'if [ -s "$CSR" ] && [ "$(openssl req -in "$CSR" -noout -pubkey)" = '
        '"$(openssl pkey -in "$KEY" -pubout)" ]; then exit 0; fi',
        f'openssl req -new -key "$KEY" -subj "/CN=$N"{addext} -out "$CSR.tmp"',
        'chmod 644 "$CSR.tmp"; own "$CSR.tmp"; mv -f "$CSR.tmp" "$CSR"',
    ])


def request_fingerprint(pem: str) -> str:
    """SHA-256 over the DER of a PEM request: the digest the CA shows as its fingerprint (and
    ``puppet agent --fingerprint`` prints), ``AB:CD:...``."""
    lines = pem.strip().splitlines()
    if len(lines) < 3 or not lines[0].startswith("-----BEGIN") or not lines[-1].startswith("-----END"):
        raise ValueError("not a PEM certificate request")
    der = base64.b64decode("".join(lines[1:-1]), validate=True)
    return ":".join(f"{b:02X}" for b in hashlib.sha256(der).digest())


def _write(path: str, content: str) -> str:
    """Shell: ``content`` into ``path`` (a temp file beside it), 0644, owned as Puppet's."""
    tmp = f"{path}.puppetops-tmp"
    return (f"printf '%s' {shlex.quote(content)} > {tmp} && chmod 644 {tmp} && own {tmp} && "
            f"mv -f {tmp} {path}")


def bundle_script(layout: Layout, files: dict[str, str]) -> str:
    """Write the CA's files (path under ssldir → content) in one command."""
    return "\n".join([prepare_dirs(layout)] + [
        _write(shlex.quote(f"{layout.ssldir}/{name}"), text) for name, text in files.items()])


def _matches_key(path: str) -> str:
    return (f'[ "$(openssl x509 -in {path} -noout -pubkey)" = '
            '"$(openssl pkey -in "$KEY" -pubout)" ]')


def verify_command(layout: Layout, certname: str) -> str:
    """The certificate is for this node's key and chains to the CA (and is not revoked, when
    the node has the CRL) — what ``puppet ssl verify`` checks."""
    return "\n".join([
        _prelude(layout, certname),
        _matches_key('"$CERT"') + ' || { echo "certificate does not match the private key" >&2; '
        "exit 1; }",
        'if [ -s "$S/crl.pem" ]; then set -- -crl_check -CRLfile "$S/crl.pem"; fi',
        'openssl verify -CAfile "$S/certs/ca.pem" "$@" "$CERT" >/dev/null',
    ])


def install_script(layout: Layout, certname: str, cert_pem: str) -> str:
    """Install the signed certificate (read on the CA host) only if it is for this node's key
    and chains to the CA, then drop the request (as Puppet does once it has its
    certificate)."""
    return "\n".join([
        _prelude(layout, certname),
        'T="$CERT.puppetops-tmp"',
        f"printf '%s' {shlex.quote(cert_pem)} > \"$T\"",
        _matches_key('"$T"') + ' || { echo "the CA\'s certificate for $N is not for this '
        'node\'s key" >&2; rm -f "$T"; exit 1; }',
        'openssl verify -CAfile "$S/certs/ca.pem" "$T" >/dev/null || { rm -f "$T"; exit 1; }',
        'chmod 644 "$T"; own "$T"; mv -f "$T" "$CERT"; rm -f "$CSR"',
    ])
