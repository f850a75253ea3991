"""The status page's files: its HTML, script and style (package data, ``static/``), and
mermaid.min.js from the configured path, with the headers that keep the page safe.

The HTML holds no data: the script fetches ``/status.json`` and writes every host, commit
and message with ``textContent``, so a name can never become markup. The Content-Security-
Policy allows scripts from this server only (no inline script, no CDN, no eval); styles may
be inline because Mermaid's SVG carries its own ``<style>``.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from importlib import resources

from .. import mermaid_js

CSP = ("default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
       "img-src 'self' data:; font-src 'self' data:; connect-src 'self'; base-uri 'none'; "
       "form-action 'none'; frame-ancestors 'none'")
MERMAID_PATH = "/mermaid.min.js"
_MERMAID_TAG = "<!-- mermaid -->"  # in status.html: where the renderer's script goes
STATIC = {"/status.js": ("status.js", "text/javascript; charset=utf-8"),
          "/status.css": ("status.css", "text/css; charset=utf-8")}


@dataclass(frozen=True)
class File:
    """A 200 response that is not JSON: its bytes, type and extra headers."""

    body: bytes
    content_type: str
    headers: tuple[tuple[str, str], ...] = ()


def _package_file(name: str) -> bytes:
    return resources.files(__package__).joinpath("static", name).read_bytes()


def mermaid_file(configured: str | None) -> str:
    """The mermaid.min.js to serve: the configured path, else the controller's cache (where
    ``python -m puppetops.mermaid_js`` puts the pinned version)."""
    return configured or str(mermaid_js.path())


class Page:
    """The page's files, read once (they ship with the code); mermaid.min.js is looked for
    at each request, so installing it later needs no restart."""

    def __init__(self, mermaid: str):
        self.mermaid = mermaid
        self.html = _package_file("status.html").decode()
        self.static = {path: File(_package_file(name), kind, (("Cache-Control", "no-cache"),))
                       for path, (name, kind) in STATIC.items()}

    def mermaid_available(self) -> bool:
        return os.path.isfile(self.mermaid) and os.access(self.mermaid, os.R_OK)

    def index(self) -> File:
        script = f'<script src="{MERMAID_PATH}" defer></script>' \
            if self.mermaid_available() else ""
        return File(self.html.replace(_MERMAID_TAG, script).encode(), "text/html; charset=utf-8",
                    (("Content-Security-Policy", CSP), ("Cache-Control", "no-cache")))

    def file(self, path: str) -> File | None:
        """A static file or mermaid.min.js by its URL path; None when there is none."""
        if path != MERMAID_PATH:
            return self.static.get(path)
        try:
            with open(self.mermaid, "rb") as handle:
                return File(handle.read(), "text/javascript; charset=utf-8",
                            (("Cache-Control", "public, max-age=86400"),))
        except OSError:
            return None
