"""The WSGI application: routes, the order of checks on a push, and the status codes.

A push is checked cheapest-first and nothing is queued until every check passed:
size (413, from Content-Length before any byte is read; the read is capped too) → forge
recognised (400) → authentic (401) → JSON (400) → event kind (tags, pings, others: 200,
ignored) → fields (400) → environment name (422) → queued (202 ``{"id": ...}``): a deploy
for a pushed branch, a removal for a deleted one (``deleted_branches: keep``: 200, ignored).

With the status page on (``status_page``), ``GET /`` is the fleet's status page, which
polls ``GET /status.json``: the last status gathered by ``fleet.FleetWatch`` (never a
gather per request) and the recent deploys; its script, style and mermaid.min.js are
served too (``page``).

Every request leaves one JSON line in the log. Any unexpected error becomes a 500 with a
JSON body and a log line: no traceback ever reaches a client, and the server keeps serving.
"""
from __future__ import annotations

import json
import re
import time
from typing import Any, Callable, Iterable

from .config import WebhookConfig
from .environments import RefusedName, environment_for
from .fleet import FleetWatch
from .log import JsonLog
from .page import MERMAID_PATH, STATIC, File, Page
from .providers import MalformedEvent, decode, detect
from .queue import DeployQueue, QueueClosed
from .store import DEPLOY, REMOVE, DeployStore

PUSH_PATHS = ("/payload", "/api/v1/r10k/environment")  # the second: webhook-go's, kept working
DEPLOY_PATH = re.compile(r"/deploys/(\d{1,18})")
RECENT = 50
RECENT_ON_PAGE = 10
PAGE_PATHS = ("/", "/status.json", *STATIC, MERMAID_PATH)
STATUS_OFF = ("the status page is off: set `status_page: true` in the webhook's config "
              "(install_webhook does)")

StartResponse = Callable[..., Any]


class RequestRefused(Exception):
    """Ends a request early with ``status`` and a JSON body whose ``error`` is also logged."""

    def __init__(self, status: int, body: dict[str, Any]):
        super().__init__(body.get("error", ""))
        self.status, self.body = status, body


_REASONS = {200: "OK", 202: "Accepted", 400: "Bad Request", 401: "Unauthorized",
            404: "Not Found", 405: "Method Not Allowed", 411: "Length Required",
            413: "Content Too Large", 422: "Unprocessable Content", 500: "Internal Server Error",
            503: "Service Unavailable"}


class WebhookApp:
    def __init__(self, config: WebhookConfig, queue: DeployQueue, store: DeployStore,
                 log: JsonLog, fleet: FleetWatch | None = None, page: Page | None = None):
        """``fleet`` and ``page``: the status page's data and files (None: no status page)."""
        self.config, self.queue, self.store, self.log = config, queue, store, log
        self.fleet, self.page = fleet, page

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        started = time.monotonic()
        method, path = environ.get("REQUEST_METHOD", ""), environ.get("PATH_INFO", "")
        fields: dict[str, Any] = {}
        try:
            status, body = self._route(method, path, environ, fields)
        except RequestRefused as reply:
            status, body = reply.status, reply.body
            fields["error"] = body.get("error", "")
        except Exception as exc:  # a bug: answer, log, and keep serving
            status, body = 500, {"error": "internal error"}
            fields["error"] = f"{type(exc).__name__}: {exc}"[:500]
        if isinstance(body, File):  # a page file: its own type and headers
            payload, kind = body.body, body.content_type
            extra = [("X-Content-Type-Options", "nosniff"), *body.headers]
        else:
            payload, kind, extra = json.dumps(body).encode(), "application/json", []
        headers = [("Content-Type", kind), ("Content-Length", str(len(payload))), *extra]
        if status == 405:
            headers.append(("Allow", "POST" if path in PUSH_PATHS else "GET"))
        start_response(f"{status} {_REASONS[status]}", headers)
        self.log.write(event="request", method=method[:16], path=path[:200], status=status,
                       remote=environ.get("REMOTE_ADDR", ""),
                       ms=round((time.monotonic() - started) * 1000, 2), **fields)
        return [payload]

    def _route(self, method: str, path: str, environ: dict[str, Any],
               fields: dict[str, Any]) -> tuple[int, dict[str, Any] | File]:
        if path in PUSH_PATHS:
            self._only(method, "POST")
            return self._push(environ, fields)
        if path == "/health":
            self._only(method, "GET")
            return 200, {"status": "ok", **self.queue.active(), "deploys": self.store.counts()}
        if path == "/deploys":
            self._only(method, "GET")
            return 200, {"deploys": self.store.recent(RECENT)}
        match = DEPLOY_PATH.fullmatch(path)
        if match:
            self._only(method, "GET")
            deploy = self.store.get(int(match.group(1)))
            if deploy is None:
                raise RequestRefused(404, {"error": f"no deploy {match.group(1)}"})
            return 200, deploy
        if path in PAGE_PATHS:
            self._only(method, "GET")
            return self._status_page(path)
        raise RequestRefused(404, {"error": "not found: POST /payload, GET /health, /deploys, "
                                   "/deploys/<id>"
                                   + (", / (the status page), /status.json" if self.fleet
                                      else "")})

    def _status_page(self, path: str) -> tuple[int, dict[str, Any] | File]:
        """The page, its data (the last gather: asking for it is what keeps the gathers
        going), or one of its files."""
        if self.fleet is None or self.page is None:
            raise RequestRefused(404, {"error": STATUS_OFF})
        if path == "/":
            self.fleet.wanted()
            return 200, self.page.index()
        if path == "/status.json":
            self.fleet.wanted()
            return 200, {**self.fleet.snapshot(), "mermaid_js": self.page.mermaid_available(),
                         "deploys": self.store.recent(RECENT_ON_PAGE)}
        found = self.page.file(path)
        if found is None:
            raise RequestRefused(404, {"error": f"{path}: not installed on this webhook (the page shows "
                                       "the diagram's text instead)"})
        return 200, found

    @staticmethod
    def _only(method: str, allowed: str) -> None:
        if method != allowed:
            raise RequestRefused(405, {"error": f"use {allowed}"})

    def _push(self, environ: dict[str, Any], fields: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        body = self._body(environ)
        headers = {key[5:].replace("_", "-").lower(): value
                   for key, value in environ.items() if key.startswith("HTTP_")}
        provider = detect(headers)
        if provider is None:
            raise RequestRefused(400, {"error": "not a webhook from a known forge (no X-GitHub-Event, "
                                       "X-Gitlab-Event, X-Gitea-Event, X-Forgejo-Event or "
                                       "Bitbucket X-Event-Key header)"})
        fields["provider"] = provider.name
        if self.config.secret is not None and not provider.authentic(headers, body,
                                                                     self.config.secret):
            raise RequestRefused(401, {"error": f"{provider.name}: missing or wrong "
                                       f"{provider.signature_header}; nothing deployed"})
        try:
            event = provider.event(headers, decode(body, environ.get("CONTENT_TYPE", "")))
        except MalformedEvent as exc:
            raise RequestRefused(400, {"error": str(exc)}) from None
        fields["kind"] = event.kind
        if not event.pushes:
            fields["ignored"] = event.ignored
            return 200, {"ignored": event.ignored}
        try:
            targets = [(push, environment_for(push.branch, self.config.prefix))
                       for push in event.pushes]
        except RefusedName as exc:
            raise RequestRefused(422, {"error": str(exc)}) from None
        remove = self.config.deleted_branches == "remove"
        deploys, ignored = [], []
        for push, environment in targets:
            if push.deleted and not remove:
                ignored.append(f"branch {push.branch} deleted: environment {environment} left "
                               "in place (deleted_branches: keep)")
                continue
            action = REMOVE if push.deleted else DEPLOY
            try:
                queued = self.queue.submit(environment, push.commit, provider.name, action)
            except QueueClosed as exc:
                raise RequestRefused(503, {"error": str(exc)}) from None
            deploys.append({"id": queued.id, "environment": environment, "action": action,
                            "commit": push.commit or None, "coalesced": queued.coalesced})
        fields.update(deploys=deploys, **({"ignored": "; ".join(ignored)} if ignored else {}))
        if not deploys:
            return 200, {"ignored": "; ".join(ignored)}
        return 202, {"id": deploys[0]["id"], "deploys": deploys,
                     **({"ignored": "; ".join(ignored)} if ignored else {})}

    def _body(self, environ: dict[str, Any]) -> bytes:
        """The raw body, refused before reading when its declared size is over the limit."""
        limit = self.config.max_body_bytes
        declared = environ.get("CONTENT_LENGTH") or ""
        if not declared.isdigit():
            raise RequestRefused(411, {"error": "Content-Length required"})
        if int(declared) > limit:
            raise RequestRefused(413, {"error": f"body over {limit} bytes"})
        body = environ["wsgi.input"].read(min(int(declared), limit))
        if len(body) != int(declared):
            raise RequestRefused(400, {"error": "body shorter than its Content-Length"})
        return body
