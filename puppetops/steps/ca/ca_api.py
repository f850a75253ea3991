"""The CA's REST API, called with curl on the CA host itself, as the CA host.

Why not ``puppetserver ca``: each call of that CLI starts Ruby, and every call that makes
two HTTP requests or more (``sign`` of several names, any ``clean``) stalls on Debian 12
(lab pitfall P15: Ruby's Net::HTTP and TLS 1.3). curl makes the same requests without
either, all of one call over one connection (docs/benchmarks.md, "What changed in
enrolment").

What authorizes the calls is the same as for the CLI: the CA host's own certificate, which
``puppetserver ca setup`` issues with the pp_cli_auth extension that auth.conf's
certificate_status rule asks for. The requests go to ``127.0.0.1`` under the CA's certname
(``--resolve``), so the server's certificate is verified against the CA bundle without any
DNS, and nothing leaves the host.
"""
from __future__ import annotations

import json
import shlex
from typing import Iterable

from ...errors import StepError
from ...puppet import names
from ...puppet.layout import Layout
from ...step import StepContext

PORT = 8140
_API = "/puppet-ca/v1"
BULK = 8  # above this many names, statuses() reads the CA's whole listing once
_SEPARATOR = "@@puppetops-http"  # curl prints it with the status after each response body


def _options(layout: Layout, ca_name: str) -> str:
    """curl's options for one request to the CA as the CA host (repeated after ``--next``)."""
    ssl = layout.ssldir
    name = names.certname(ca_name)
    return " ".join(["-sS --max-time 60", "--resolve", shlex.quote(f"{name}:{PORT}:127.0.0.1"),
                     "--cacert", shlex.quote(f"{ssl}/certs/ca.pem"),
                     "--cert", shlex.quote(f"{ssl}/certs/{name}.pem"),
                     "--key", shlex.quote(f"{ssl}/private_keys/{name}.pem"),
                     "-w", shlex.quote(f"\\n{_SEPARATOR} %{{http_code}}\\n")])


def _listed(certnames: Iterable[str]) -> list[str]:
    """Validated certnames, each once, in a stable order (never an option such as --all)."""
    return names.certnames(sorted(set(certnames)))


def _url(ca_name: str, path: str) -> str:
    return shlex.quote(f"https://{ca_name}:{PORT}{_API}/{path}")


def parse_responses(text: str) -> list[tuple[int, str]]:
    """curl's output for several URLs → [(HTTP status, body)], in request order."""
    replies, body = [], []
    for line in text.split("\n"):
        if line.startswith(_SEPARATOR + " "):
            code = line.split()[-1]
            replies.append((int(code) if code.isdigit() else 0, "\n".join(body)))
            body = []
        else:
            body.append(line)
    return replies


def call(ctx: StepContext, layout: Layout, ca_name: str, method: str, paths: list[str],
         body: dict | None = None) -> list[tuple[int, str]]:
    """One curl run: ``method`` on every path (one TLS connection), [(status, body)] back."""
    data = f" -H 'Content-Type: application/json' --data {shlex.quote(json.dumps(body))}" \
        if body is not None else ""
    urls = " ".join(_url(ca_name, p) for p in paths)
    return _run(ctx, f"curl {_options(layout, ca_name)} -X {method}{data} {urls}", method, paths,
                ca_name)


def _run(ctx: StepContext, command: str, method: str, paths: list[str],
         ca_name: str) -> list[tuple[int, str]]:
    out = ctx.run(command, check=False)
    replies = parse_responses(out.stdout)
    if len(replies) != len(paths) or any(code == 0 for code, _ in replies):
        raise StepError(f"the CA at {ca_name}:{PORT} did not answer {method} {_API}/"
                        f"{paths[0] if paths else ''}: "
                        f"{(out.stderr or out.stdout).strip()[:300]}", exit_code=out.exit_code)
    forbidden = [p for p, (code, _) in zip(paths, replies) if code in (401, 403)]
    if forbidden:
        raise StepError(f"the CA refused {method} {_API}/{forbidden[0]} to {ca_name}'s own "
                        "certificate: it needs the pp_cli_auth extension that "
                        "`puppetserver ca setup` gives the CA host (see auth.conf's "
                        "certificate_status rule)")
    return replies


def statuses(ctx: StepContext, layout: Layout, ca_name: str,
             certnames: Iterable[str]) -> list[dict]:
    """The CA's certificate_status of each name it knows (unknown names are left out).

    Up to ``BULK`` names are asked one by one (a small answer however big the CA); more are
    read from one listing of every request and certificate, which the CA answers in one
    request instead of one per name."""
    wanted = _listed(certnames)
    if not wanted:
        return []
    if len(wanted) > BULK:
        chosen = set(wanted)
        return [st for st in all_statuses(ctx, layout, ca_name) if st.get("name") in chosen]
    found = []
    for name, (code, body) in zip(wanted, call(ctx, layout, ca_name, "GET",
                                               [f"certificate_status/{n}" for n in wanted])):
        if code == 200:
            found.append(json.loads(body))
        elif code != 404:
            raise StepError(f"the CA answered {code} for certificate_status/{name}: "
                            f"{body.strip()[:200]}")
    return found


_LISTING = "certificate_statuses/any_key"


def all_statuses(ctx: StepContext, layout: Layout, ca_name: str) -> list[dict]:
    """Every certificate and request the CA has."""
    reply = call(ctx, layout, ca_name, "GET", [_LISTING])
    return _listing(reply)


def all_statuses_command(layout: Layout, ca_name: str) -> str:
    """The curl command whose output ``parse_all_statuses`` reads: ``all_statuses`` as a
    command, for a script that gathers it with other reads in one remote call."""
    return f"curl {_options(layout, ca_name)} -X GET {_url(ca_name, _LISTING)}"


def parse_all_statuses(text: str) -> list[dict]:
    """Every certificate and request, from ``all_statuses_command``'s output."""
    replies = parse_responses(text)
    if len(replies) != 1 or replies[0][0] == 0:
        raise StepError(f"the CA did not answer GET {_API}/{_LISTING}: {text.strip()[:300]}")
    return _listing(replies)


def _listing(replies: list[tuple[int, str]]) -> list[dict]:
    (code, body), = replies
    if code != 200:
        raise StepError(f"the CA answered {code} for certificate_statuses: {body.strip()[:200]}")
    return json.loads(body)


def set_state(ctx: StepContext, layout: Layout, ca_name: str, certnames: Iterable[str],
              state: str) -> dict[str, tuple[int, str]]:
    """PUT desired_state (``signed`` or ``revoked``) for each name: name → (status, body)."""
    listed = _listed(certnames)
    replies = call(ctx, layout, ca_name, "PUT", [f"certificate_status/{n}" for n in listed],
                   {"desired_state": state})
    return dict(zip(listed, replies))


def submit(ctx: StepContext, layout: Layout, ca_name: str,
           requests: dict[str, str]) -> dict[str, tuple[int, str]]:
    """PUT each node's certificate request (PEM) to the CA, all in one curl run (a body per
    request, ``--next`` between them): name → (status, body). A 400 "already has a requested
    certificate" means the CA holds one; the fingerprint check decides whose it is."""
    listed = _listed(requests)
    paths = [f"certificate_request/{n}" for n in listed]
    options = _options(layout, ca_name)
    command = "curl " + " --next ".join(
        f"{options} -X PUT -H 'Content-Type: text/plain' --data-binary "
        f"{shlex.quote(requests[n])} {_url(ca_name, p)}" for n, p in zip(listed, paths))
    return dict(zip(listed, _run(ctx, command, "PUT", paths, ca_name)))


def certificates(ctx: StepContext, layout: Layout, ca_name: str,
                 certnames: Iterable[str]) -> dict[str, str]:
    """The signed certificates (PEM) of ``certnames``; names without one are left out."""
    listed = _listed(certnames)
    if not listed:
        return {}
    replies = call(ctx, layout, ca_name, "GET", [f"certificate/{n}" for n in listed])
    return {n: body.strip() + "\n" for n, (code, body) in zip(listed, replies) if code == 200}


def delete(ctx: StepContext, layout: Layout, ca_name: str,
           certnames: Iterable[str]) -> dict[str, tuple[int, str]]:
    """Delete the CA's request or certificate file of each name: name → (status, body)."""
    listed = _listed(certnames)
    replies = call(ctx, layout, ca_name, "DELETE", [f"certificate_status/{n}" for n in listed])
    return dict(zip(listed, replies))
