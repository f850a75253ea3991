"""The git forges: which one sent a request, whether it is authentic, and what was pushed.

Each forge is recognised from its own event header and authenticated its own way, always in
constant time over the raw body as received (never a re-serialised one):

- GitHub: ``X-GitHub-Event``; ``X-Hub-Signature-256: sha256=<HMAC>``
- GitLab: ``X-Gitlab-Event``; ``X-Gitlab-Token: <secret>``
- Gitea / Forgejo: ``X-Gitea-Event`` / ``X-Forgejo-Event``; ``X-Gitea-Signature`` /
  ``X-Forgejo-Signature: <HMAC>``
- Bitbucket Cloud: ``X-Event-Key`` + ``X-Hook-UUID``; ``X-Hub-Signature: sha256=<HMAC>``
- Bitbucket Server / Data Center: ``X-Event-Key`` + ``X-Request-Id``; ``X-Hub-Signature:
  sha256=<HMAC>``

(HMAC: hex HMAC-SHA256 of the body with the shared secret.) Gitea and Forgejo also send
GitHub's headers, so they are recognised first. A push yields one ``BranchPush`` per branch it
updated; tags, pings and every other event yield none and a reason.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import re
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping
from urllib.parse import parse_qs

COMMIT = re.compile(r"[0-9a-f]{7,64}")
BRANCH_REF = "refs/heads/"


class MalformedEvent(ValueError):
    """The body is not the JSON the forge's event should carry (a 400)."""


@dataclass(frozen=True)
class BranchPush:
    branch: str
    commit: str      # the new head; "" when the branch was deleted
    deleted: bool = False


@dataclass(frozen=True)
class Event:
    provider: str
    kind: str                                   # the forge's own event name
    pushes: list[BranchPush] = field(default_factory=list)
    ignored: str = ""                           # why nothing is deployed, when nothing is


Headers = Mapping[str, str]  # lower-case header name → value


@dataclass(frozen=True)
class Provider:
    name: str
    event_header: str
    signature_header: str
    signature_prefix: str  # "sha256=" or "" (bare hex); "token" for GitLab's shared token
    parse: Callable[[str, Any], Event]
    also_needs: str = ""   # a second header that tells the Bitbucket flavours apart

    def matches(self, headers: Headers) -> bool:
        return self.event_header in headers and (not self.also_needs
                                                 or self.also_needs in headers)

    def event(self, headers: Headers, payload: Any) -> Event:
        """What the (authenticated, decoded) request says happened."""
        if not isinstance(payload, dict):
            raise MalformedEvent("body: expected a JSON object")
        return self.parse(headers[self.event_header][:80], payload)

    def signature(self, body: bytes, secret: str) -> str:
        """The value of ``signature_header`` a forge sends for ``body`` (also what a client,
        such as the lab's post-receive hook, sends to us)."""
        if self.signature_prefix == "token":
            return secret
        return self.signature_prefix + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()

    def authentic(self, headers: Headers, body: bytes, secret: str) -> bool:
        """Whether the request carries this forge's proof of ``secret`` (constant time)."""
        given = headers.get(self.signature_header, "").encode("latin-1", "replace")
        if self.signature_prefix != "token":
            given = given.lower()
        return hmac.compare_digest(given, self.signature(body, secret).encode())


def detect(headers: Headers) -> Provider | None:
    """The forge that sent a request with these (lower-case) headers, or None."""
    return next((p for p in PROVIDERS if p.matches(headers)), None)


def decode(body: bytes, content_type: str) -> Any:
    """The JSON document in ``body``: raw JSON, or GitHub's form encoding (``payload=...``)."""
    try:
        if content_type.split(";")[0].strip().lower() == "application/x-www-form-urlencoded":
            payload = parse_qs(body.decode("utf-8"), strict_parsing=True).get("payload")
            if not payload:
                raise MalformedEvent("form-encoded body without a payload field")
            return json.loads(payload[0])
        return json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        if isinstance(exc, MalformedEvent):
            raise
        raise MalformedEvent("body is not valid JSON") from None


# -- payload readers -------------------------------------------------------------------------
def _get(document: Any, *path: str) -> Any:
    """``document[path[0]][path[1]]...``; MalformedEvent naming the missing field."""
    value = document
    for i, key in enumerate(path):
        if not isinstance(value, dict) or key not in value:
            raise MalformedEvent(f"missing field {'.'.join(path[:i + 1])}")
        value = value[key]
    return value


def _text(document: Any, *path: str) -> str:
    value = _get(document, *path)
    if not isinstance(value, str) or not value:
        raise MalformedEvent(f"field {'.'.join(path)}: expected a non-empty string")
    return value


def _commit(value: str, where: str) -> str:
    if not COMMIT.fullmatch(value):
        raise MalformedEvent(f"field {where}: expected a commit id (hex)")
    return value


def _zero(commit: str) -> bool:
    return set(commit) == {"0"}


def _ref_push(provider: str, kind: str, payload: Any, deleted: bool | None = None) -> Event:
    """A push in the GitHub shape (``ref``, ``after``), shared by GitHub, GitLab and Gitea."""
    ref = _text(payload, "ref")
    after = _text(payload, "after")
    if not ref.startswith(BRANCH_REF):
        return Event(provider, kind, ignored=f"not a branch: {ref[:80]!r}")
    gone = _zero(after) if deleted is None else deleted
    commit = "" if gone else _commit(after, "after")
    return Event(provider, kind, [BranchPush(ref[len(BRANCH_REF):], commit, gone)])


def _github(kind: str, payload: Any) -> Event:
    if kind == "delete" and payload.get("ref_type") == "branch":  # besides push's deleted
        return Event("github", kind, [BranchPush(_text(payload, "ref"), "", True)])
    if kind != "push":
        return Event("github", kind, ignored=f"{kind} event")
    deleted = _get(payload, "deleted") if "deleted" in payload else None
    return _ref_push("github", kind, payload, deleted if isinstance(deleted, bool) else None)


def _gitlab(kind: str, payload: Any) -> Event:
    # a system hook carries pushes too, named in the body rather than the header
    push = kind == "Push Hook" or (kind == "System Hook"
                                   and payload.get("event_name") == "push")
    if not push:
        return Event("gitlab", kind, ignored=f"{kind} event")
    return _ref_push("gitlab", kind, payload)


def _gitea(name: str) -> Callable[[str, Any], Event]:
    def parse(kind: str, payload: Any) -> Event:
        if kind == "delete" and payload.get("ref_type") == "branch":
            return Event(name, kind, [BranchPush(_text(payload, "ref"), "", True)])
        if kind != "push":
            return Event(name, kind, ignored=f"{kind} event")
        return _ref_push(name, kind, payload)
    return parse


def _bitbucket_cloud(kind: str, payload: Any) -> Event:
    if kind != "repo:push":
        return Event("bitbucket-cloud", kind, ignored=f"{kind} event")
    changes = _get(payload, "push", "changes")
    if not isinstance(changes, list):
        raise MalformedEvent("field push.changes: expected a list")
    pushes = []
    for change in changes:
        new, old = (change.get("new"), change.get("old")) if isinstance(change, dict) else (0, 0)
        if new is None and isinstance(old, dict):
            if old.get("type") == "branch":
                pushes.append(BranchPush(_text(old, "name"), "", True))
        elif isinstance(new, dict):
            if new.get("type") == "branch":
                pushes.append(BranchPush(_text(new, "name"),
                                         _commit(_text(new, "target", "hash"), "target.hash")))
        else:
            raise MalformedEvent("field push.changes: each change needs new or old")
    return Event("bitbucket-cloud", kind, pushes, "" if pushes else "no branch changed")


def _bitbucket_server(kind: str, payload: Any) -> Event:
    if kind != "repo:refs_changed":
        return Event("bitbucket-server", kind, ignored=f"{kind} event")
    changes = _get(payload, "changes")
    if not isinstance(changes, list):
        raise MalformedEvent("field changes: expected a list")
    pushes = []
    for change in changes:
        ref = _text(change, "ref", "id")
        if not ref.startswith(BRANCH_REF):
            continue
        if _text(change, "type") == "DELETE":
            pushes.append(BranchPush(ref[len(BRANCH_REF):], "", True))
        else:
            pushes.append(BranchPush(ref[len(BRANCH_REF):],
                                     _commit(_text(change, "toHash"), "toHash")))
    return Event("bitbucket-server", kind, pushes, "" if pushes else "no branch changed")


PROVIDERS = (
    Provider("forgejo", "x-forgejo-event", "x-forgejo-signature", "", _gitea("forgejo")),
    Provider("gitea", "x-gitea-event", "x-gitea-signature", "", _gitea("gitea")),
    Provider("gitlab", "x-gitlab-event", "x-gitlab-token", "token", _gitlab),
    Provider("bitbucket-cloud", "x-event-key", "x-hub-signature", "sha256=", _bitbucket_cloud,
             also_needs="x-hook-uuid"),
    Provider("bitbucket-server", "x-event-key", "x-hub-signature", "sha256=", _bitbucket_server,
             also_needs="x-request-id"),
    Provider("github", "x-github-event", "x-hub-signature-256", "sha256=", _github),
)
BY_NAME = {p.name: p for p in PROVIDERS}
