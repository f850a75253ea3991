"""A git ``post-receive`` hook that turns a push into what a forge would send: for each pushed
branch, a GitHub-style push event, signed with the webhook's secret (``X-Hub-Signature-256``:
HMAC-SHA256 of the raw body), posted to the webhook. With it, a bare control repo on main
needs no forge: ``git push`` to it is the whole workflow.

    exec /opt/puppetops-webhook/venv/bin/python -m puppetops.webhook.post_receive \\
        --config /etc/puppetops-webhook/config.yaml

git feeds the hook one ``OLD NEW REF`` line per updated ref; what the webhook answers goes
back to the pusher (git shows it as ``remote: ...``). A hook cannot undo a push, so the hook
always exits 0: a webhook that is down is reported, never a reason to fail the push.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import urllib.error
import urllib.request
import uuid
from typing import Any, Iterable, TextIO

from ..errors import UsageError
from . import config as settings
from .providers import BY_NAME, BRANCH_REF

ZERO = "0" * 40
TIMEOUT = 10.0


def push_event(ref: str, before: str, after: str, repository: str, pusher: str) -> dict[str, Any]:
    """GitHub's push event for one ref (the fields webhooks read): a deleted branch has
    ``after`` all zeros and ``deleted: true``, a new one ``before`` all zeros."""
    deleted, created = set(after) == {"0"}, set(before) == {"0"}
    return {"ref": ref, "before": before, "after": after, "created": created,
            "deleted": deleted, "forced": False,
            "repository": {"name": os.path.basename(repository.rstrip("/")).removesuffix(".git"),
                           "full_name": repository},
            "pusher": {"name": pusher},
            "head_commit": None if deleted else {"id": after}, "commits": []}


def signed_request(url: str, event: dict[str, Any], secret: str | None) -> urllib.request.Request:
    """The POST a forge would make: the body exactly as signed."""
    body = json.dumps(event).encode()
    headers = {"Content-Type": "application/json", "User-Agent": "puppetops-post-receive",
               "X-GitHub-Event": "push", "X-GitHub-Delivery": str(uuid.uuid4())}
    github = BY_NAME["github"]
    if secret is not None:
        headers[github.signature_header] = github.signature(body, secret)
    return urllib.request.Request(url, data=body, headers=headers, method="POST")


def local_url(host: str, port: int, path: str) -> str:
    """``path`` on a webhook of this host listening on ``host``:``port`` (listening on every
    address, it answers on loopback)."""
    host = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(host, host)
    return f"http://{f'[{host}]' if ':' in host else host}:{port}{path}"


def post(request: urllib.request.Request) -> str:
    """One line for the pusher: what the webhook did with the push."""
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT) as response:
            status, text = response.status, response.read()
    except urllib.error.HTTPError as exc:
        status, text = exc.code, exc.read()
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        return f"webhook at {request.full_url} not reached ({reason}): nothing deployed"
    try:
        answer = json.loads(text)
    except ValueError:
        answer = {}
    if status == 202:
        return "; ".join(f"{'removal' if d.get('action') == 'remove' else 'deploy'} {d['id']} "
                         f"of environment {d['environment']} "
                         f"{'joined' if d.get('coalesced') else 'queued'}"
                         for d in answer.get("deploys", [])) or f"accepted (deploy {answer.get('id')})"
    if 200 <= status < 300:
        return f"nothing to deploy: {answer.get('ignored') or 'ignored'}"
    return f"refused ({status}): {answer.get('error') or text[:200]!r}"


def announce(lines: Iterable[str], config: settings.WebhookConfig, repository: str,
             pusher: str, out: TextIO) -> None:
    """One signed push event per updated branch (tags and other refs are nobody's deploy)."""
    url = local_url(config.host, config.port, "/payload")
    for line in lines:
        fields = line.split()
        if len(fields) != 3 or not fields[2].startswith(BRANCH_REF):
            continue
        before, after, ref = fields
        event = push_event(ref, before, after, repository, pusher)
        result = post(signed_request(url, event, config.secret))
        print(f"puppetops webhook: {ref[len(BRANCH_REF):]}: {result}", file=out, flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="post-receive", description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", required=True, help="the webhook's config file")
    args = parser.parse_args(argv)
    try:
        config = settings.load(args.config)
    except UsageError as exc:
        print(f"puppetops webhook: not notified: {exc}", file=sys.stderr)
        return 0
    repository = os.path.abspath(os.environ.get("GIT_DIR", "."))
    pusher = os.environ.get("USER") or os.environ.get("LOGNAME") or "git"
    announce(sys.stdin, config, repository, pusher, sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
