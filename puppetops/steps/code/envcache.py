"""Puppet Server's environment cache: the setting deploy_code's guarantee rests on.

deploy_code flushes no environment cache unless every server has the same commit. That holds
new code back only where Puppet Server keeps serving the environment it has cached until the
flush: ``environment_timeout = unlimited``, what Puppet and r10k recommend for compile servers
whose deploys end with an explicit flush. Debian's default is 0 — every compile reads the code
on disk — so there a server serves whatever it deployed at once, flushed or not.
bootstrap_ca and add_compiler set it in puppet.conf's ``[server]`` section; ``problem`` tells
whether a running server actually works that way (an environment.conf can override it per
environment, and a server not reloaded since still runs with the old value).
"""
from __future__ import annotations

import json
import shlex

from ...puppet import node
from ...step import StepContext

UNLIMITED = "unlimited"
SERVER_SETTINGS = {"environment_timeout": UNLIMITED}  # puppet.conf [server]
ENVIRONMENTS_API = "/puppet/v3/environments"


def timeouts_command(ctx: StepContext) -> str:
    """curl, with the server's own certificate, of its environments endpoint (each
    environment's effective settings; the default auth.conf lets any certificate read it)."""
    ssl, certname = node.layout(ctx.target).ssldir, node.certname(ctx.target)
    return ("curl -sS --fail --max-time 30 "
            f"--cert {shlex.quote(f'{ssl}/certs/{certname}.pem')} "
            f"--key {shlex.quote(f'{ssl}/private_keys/{certname}.pem')} "
            f"--cacert {shlex.quote(f'{ssl}/certs/ca.pem')} "
            f"{shlex.quote(f'https://{certname}:8140{ENVIRONMENTS_API}')}")


def parse_timeouts(text: str) -> dict[str, str]:
    """environment → its environment_timeout as the endpoint reports it (``unlimited`` or
    seconds); ValueError when the answer is not the endpoint's JSON."""
    data = json.loads(text)
    envs = data.get("environments") if isinstance(data, dict) else None
    if not isinstance(envs, dict):
        raise ValueError("no environments in the answer")
    return {name: str((env.get("settings") or {}).get("environment_timeout"))
            for name, env in envs.items() if isinstance(env, dict)}


def problem(ctx: StepContext) -> str | None:
    """None when the running Puppet Server keeps every environment cached until it is flushed;
    otherwise what it does instead, that deploy_code's "no flush unless every server has the
    same commit" guarantee does not hold there, and how to fix it."""
    fix = ("re-run add_compiler (bootstrap_ca on main), or set environment_timeout = unlimited "
           f"in [server] of {node.layout(ctx.target).puppet_conf} and reload Puppet Server")
    out = ctx.run(timeouts_command(ctx), check=False)
    try:
        found = parse_timeouts(out.stdout) if out.ok else None
    except ValueError:
        found = None
    if found is None:
        why = (out.stderr.strip().splitlines() or [f"curl exited {out.exit_code}"])[-1]
        return (f"cannot read environment_timeout from Puppet Server ({why}), so it may serve "
                f"new code before the flush; if it lacks the setting: {fix}")
    short = {env: t for env, t in sorted(found.items()) if t != UNLIMITED}
    if not short:
        return None
    which = ", ".join(f"{env}: {t}" for env, t in short.items())
    return (f"environment_timeout is not {UNLIMITED} ({which}): Puppet Server serves newly "
            f"deployed code before the flush, so \"no flush unless every server has the same "
            f"commit\" does not hold here; {fix}")
