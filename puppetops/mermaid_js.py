"""Mermaid's browser bundle (``mermaid.min.js`` of npm's ``mermaid``, pinned), fetched once on
the controller into ``~/.cache/puppetops`` so the webhook's status page draws the fleet's
diagram without a CDN: install_webhook ships the file to main, the webhook serves it.

The file is not kept in the repository (3.5 MB of someone else's minified code) but fetched
with ``npm pack`` — only mermaid's own tarball, whose integrity npm checks against the
registry — and then checked against the SHA-256 pinned here: a changed file under the same
version is refused, not served. ``scripts/bootstrap`` runs ``python -m puppetops.mermaid_js``
so that tests and install_webhook find it without the network. A new version: change
``VERSION`` and ``SHA256`` together (and tests/mermaid/package.json, the tests' parser).
"""
from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

from .errors import PuppetopsError

VERSION = "11.17.2"
SHA256 = "581ed7d74bd9048d0e3a91363927d72ef22942d7722546b27f7cc29e35390eb8"
MEMBER = "package/dist/mermaid.min.js"  # in npm's tarball
CACHE = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "puppetops"


class MermaidJsError(PuppetopsError):
    """mermaid.min.js could not be fetched on the controller (npm missing, offline, or a file
    that is not the pinned one)."""


def path(cache: Path | None = None) -> Path:
    """Where the pinned version's file is (or goes) in the cache (default ``CACHE``)."""
    return (cache or CACHE) / f"mermaid-{VERSION}" / "mermaid.min.js"


def cached(cache: Path | None = None) -> Path | None:
    """The cached file when it is there and is the pinned one, else None (no network)."""
    found = path(cache)
    try:
        return found if hashlib.sha256(found.read_bytes()).hexdigest() == SHA256 else None
    except OSError:
        return None


def ensure(cache: Path | None = None) -> Path:
    """The cached file, fetched with npm first if it is missing; ``MermaidJsError`` saying
    what to do when npm is missing or the fetch fails."""
    found = cached(cache)
    if found is not None:
        return found
    npm = shutil.which("npm")
    if npm is None:
        raise MermaidJsError(f"npm is missing on this controller, so mermaid {VERSION}'s "
                             "mermaid.min.js cannot be fetched: run `invoke lab-setup` (Debian's "
                             "nodejs and npm) or install npm, then `python -m puppetops.mermaid_js`")
    target = path(cache)
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".fetching-", dir=target.parent) as scratch:
        done = subprocess.run([npm, "pack", f"mermaid@{VERSION}", "--pack-destination", scratch,
                               "--silent"], cwd=scratch, capture_output=True, text=True,
                              timeout=600)
        if done.returncode:
            last = (done.stderr.strip().splitlines() or ["no output"])[-1]
            raise MermaidJsError(f"`npm pack mermaid@{VERSION}` failed: {last}")
        tarball = Path(scratch) / f"mermaid-{VERSION}.tgz"
        try:
            with tarfile.open(tarball) as archive:
                data = archive.extractfile(MEMBER).read()  # type: ignore[union-attr]
        except (OSError, KeyError, tarfile.TarError) as exc:
            raise MermaidJsError(f"{tarball.name}: no readable {MEMBER}: {exc}") from None
        if hashlib.sha256(data).hexdigest() != SHA256:
            raise MermaidJsError(f"mermaid {VERSION}'s mermaid.min.js from npm is not the one "
                                 f"pinned in {__name__} (SHA-256 {SHA256[:16]}…): not used")
        fetched = Path(scratch) / "mermaid.min.js"
        fetched.write_bytes(data)
        fetched.chmod(0o644)
        fetched.replace(target)  # atomic: a reader sees the whole file or none
    return target


def main() -> int:
    """``python -m puppetops.mermaid_js``: fetch it if needed, print where it is."""
    try:
        print(ensure())
    except MermaidJsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
