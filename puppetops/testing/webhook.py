"""For testing and benchmarking the webhook (puppetops.webhook): forge payloads signed the way
each forge signs them, a keep-alive HTTP client, and a deploy stub that records its calls.

The payloads are trimmed copies of the forges' documented push events (the fields the webhook
reads, plus a few it must ignore).
"""
from __future__ import annotations

import http.client
import json
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Callable
from urllib.parse import quote

from ..errors import Interrupted
from ..interrupt import Interruption
from ..polling import wait_until
from ..webhook.deploy import JobOutcome
from ..webhook.providers import BY_NAME

ZERO = "0" * 40
PROVIDER_NAMES = ("github", "gitlab", "gitea", "forgejo", "bitbucket-cloud", "bitbucket-server")


def push_payload(provider: str, branch: str, commit: str, *, ref_kind: str = "heads",
                 deleted: bool = False) -> dict[str, Any]:
    """A push of ``commit`` to ``branch`` (or a tag: ref_kind="tags"; or a deletion)."""
    ref = f"refs/{ref_kind}/{branch}"
    after = ZERO if deleted else commit
    if provider in ("github", "gitea", "forgejo"):
        return {"ref": ref, "before": "1" * 40, "after": after, "deleted": deleted,
                "created": False, "repository": {"full_name": "acme/control-repo"},
                "pusher": {"name": "alice"}, "commits": []}
    if provider == "gitlab":
        return {"object_kind": "push", "event_name": "push", "ref": ref, "before": "1" * 40,
                "after": after, "checkout_sha": None if deleted else commit,
                "project": {"path_with_namespace": "acme/control-repo"}, "commits": []}
    if provider == "bitbucket-cloud":
        kind = "branch" if ref_kind == "heads" else "tag"
        side = {"type": kind, "name": branch, "target": {"type": "commit", "hash": commit}}
        return {"push": {"changes": [{"new": None if deleted else side, "old": side,
                                      "created": False, "closed": deleted}]},
                "repository": {"full_name": "acme/control-repo"}}
    if provider == "bitbucket-server":
        return {"eventKey": "repo:refs_changed", "date": "2026-11-29T08:00:00+0000",
                "repository": {"slug": "control-repo"},
                "changes": [{"ref": {"id": ref, "displayId": branch,
                                     "type": "BRANCH" if ref_kind == "heads" else "TAG"},
                             "refId": ref, "fromHash": "1" * 40,
                             "toHash": ZERO if deleted else commit,
                             "type": "DELETE" if deleted else "UPDATE"}]}
    raise ValueError(provider)


PUSH_EVENT = {"github": "push", "gitlab": "Push Hook", "gitea": "push", "forgejo": "push",
              "bitbucket-cloud": "repo:push", "bitbucket-server": "repo:refs_changed"}


def forge_headers(provider: str, body: bytes, secret: str | None,
                  event: str | None = None) -> dict[str, str]:
    """The headers ``provider`` sends with ``body`` (signed with ``secret`` unless None)."""
    event = event or PUSH_EVENT[provider]
    delivery = str(uuid.uuid4())
    headers = {"Content-Type": "application/json"}
    if provider == "github":
        headers.update({"X-GitHub-Event": event, "X-GitHub-Delivery": delivery})
    elif provider in ("gitea", "forgejo"):  # both also send GitHub's headers
        headers.update({"X-Gitea-Event": event, "X-GitHub-Event": event,
                        "X-Gitea-Delivery": delivery})
        if provider == "forgejo":
            headers["X-Forgejo-Event"] = event
    elif provider == "gitlab":
        headers.update({"X-Gitlab-Event": event, "X-Gitlab-Event-UUID": delivery})
    elif provider == "bitbucket-cloud":
        headers.update({"X-Event-Key": event, "X-Hook-UUID": delivery,
                        "X-Request-UUID": delivery})
    elif provider == "bitbucket-server":
        headers.update({"X-Event-Key": event, "X-Request-Id": delivery})
    if secret is not None:
        forge = BY_NAME[provider]
        headers[forge.signature_header] = forge.signature(body, secret)
        if provider == "gitea":  # as Gitea does: the GitHub-style signature too
            headers["X-Hub-Signature-256"] = BY_NAME["github"].signature(body, secret)
        if provider == "forgejo":
            headers["X-Gitea-Signature"] = BY_NAME["gitea"].signature(body, secret)
    return headers


def form_encoded(document: dict[str, Any]) -> bytes:
    """GitHub's other content type: ``payload=<url-encoded JSON>``."""
    return ("payload=" + quote(json.dumps(document), safe="")).encode()


@dataclass
class Response:
    """What the webhook answered a test client: status, parsed JSON body (None if not JSON), bytes."""

    status: int
    body: Any
    raw: bytes


class Client:
    """One keep-alive HTTP/1.1 connection to the webhook (not thread-safe: one per thread)."""

    def __init__(self, port: int, host: str = "127.0.0.1"):
        self.connection = http.client.HTTPConnection(host, port, timeout=30)

    def request(self, method: str, path: str, body: bytes | None = None,
                headers: dict[str, str] | None = None) -> Response:
        self.connection.request(method, path, body=body, headers=headers or {})
        response = self.connection.getresponse()
        raw = response.read()
        try:
            parsed = json.loads(raw)
        except ValueError:
            parsed = None
        if response.getheader("Connection", "").lower() == "close":
            self.connection.close()
        return Response(response.status, parsed, raw)

    def push(self, provider: str, branch: str, commit: str, secret: str | None,
             **kwargs: Any) -> Response:
        body = json.dumps(push_payload(provider, branch, commit, **kwargs)).encode()
        return self.request("POST", "/payload", body, forge_headers(provider, body, secret))

    def wait(self, deploy_id: int, timeout: float = 60) -> dict[str, Any]:
        """The deploy once it is ok or failed (as it is at ``timeout``)."""
        return wait_until(lambda: self.request("GET", f"/deploys/{deploy_id}").body,
                          lambda deploy: deploy["status"] in ("ok", "failed"), timeout, 0.05)

    def wait_idle(self, timeout: float = 60) -> dict[str, Any]:
        """/health once no deploy runs or waits (as it is at ``timeout``)."""
        return wait_until(lambda: self.request("GET", "/health").body,
                          lambda health: health["running"] == 0 and health["waiting"] == 0,
                          timeout, 0.05)

    def close(self) -> None:
        self.connection.close()


@dataclass
class DeployCall:
    environment: str
    commit: str  # "" for a removal
    started: float
    ended: float
    action: str = "deploy"  # or "remove"


@dataclass
class RecordingDeploy:
    """The plans' stub at the plan boundary (``puppetops.webhook.deploy.Plans``): records
    (environment, commit, start, end, action) of each ``deploy`` and ``remove``;
    ``during(environment, commit)`` runs inside the call (sleep, wait, raise; commit "" for a
    removal). ``branches``: the control repo's branch → head; removing an environment whose
    branch is there is refused as ``remove_environment`` refuses it (and says which head to
    deploy instead). ``interrupt`` raises the flag of a real ``Interruption`` — the one a
    ``Run`` has — so a ``during`` that waits with ``interruption.sleep`` ends as a plan's
    step-boundary check would: the call returns failed with the plan's "interrupted by ..."."""

    during: Callable[[str, str], Any] = lambda environment, commit: None
    calls: list[DeployCall] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    branches: dict[str, str] = field(default_factory=dict)
    interruption: Interruption = field(default_factory=Interruption)

    def deploy(self, environment: str, commit: str) -> JobOutcome:
        return self._call(environment, commit, "deploy") or JobOutcome(
            True, {"stub": True, "environment": environment, "commit": commit})

    def remove(self, environment: str) -> JobOutcome:
        stopped = self._call(environment, "", "remove")
        head = self.branches.get(environment)
        if stopped or not head:
            return stopped or JobOutcome(True, {"stub": True, "environment": environment,
                                             "removed": True})
        return JobOutcome(False, {"stub": True, "environment": environment},
                       f"environment {environment} not removed: the control repo still has "
                       f"branch {environment}", redeploy=head)

    def interrupt(self, signum: int) -> None:
        self.interruption.request(signum)

    def _call(self, environment: str, commit: str, action: str) -> JobOutcome | None:
        """Runs ``during`` and records the call; a failed JobOutcome if it was interrupted."""
        started, stopped = time.monotonic(), None
        try:
            self.during(environment, commit)
        except Interrupted as exc:
            stopped = JobOutcome(False, {"stub": True, "environment": environment}, str(exc))
        with self.lock:
            self.calls.append(DeployCall(environment, commit, started, time.monotonic(), action))
        return stopped
