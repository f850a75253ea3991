"""Mermaid's own parser (npm's ``mermaid``, on Node with jsdom for the DOM it expects), for
tests that must know a diagram renders: installed once with npm into a cache folder outside
the checkout (versions pinned in tests/mermaid/package.json) by ``scripts/bootstrap``
(``python tests/mermaid_parser.py``: tests talk to no network, so they find it installed;
only a run without the bootstrap installs it on first use), then one ``node`` per parse.

``invoke lab-setup`` installs Node and npm where ``npm`` is missing (Debian's ``nodejs`` and
``npm``). @mermaid-js/mermaid-cli would parse the same way but needs a headless Chromium
(puppeteer); mermaid's parser is the same code without the rendering.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
from pathlib import Path

HERE = Path(__file__).resolve().parent / "mermaid"
CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "puppetops"


def _folder() -> Path:
    """The install folder, named by the pinned versions (a new pin installs afresh)."""
    manifest = (HERE / "package.json").read_bytes()
    return CACHE / f"mermaid-parser-{hashlib.sha256(manifest).hexdigest()[:12]}"


def ensure() -> Path:
    """The parser script, installing mermaid and jsdom first if needed; AssertionError with
    what to do when npm is missing or the install fails."""
    folder = _folder()
    if not (folder / "node_modules" / "mermaid" / "package.json").exists():
        npm = shutil.which("npm")
        assert npm, "npm is missing: run `invoke lab-setup` (installs Debian's nodejs and npm)"
        folder.mkdir(parents=True, exist_ok=True)
        shutil.copy(HERE / "package.json", folder / "package.json")
        done = subprocess.run([npm, "install", "--no-audit", "--no-fund", "--omit=dev"],
                              cwd=folder, capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, f"npm install of mermaid failed:\n{done.stderr[-2000:]}"
    shutil.copy(HERE / "parse.mjs", folder / "parse.mjs")
    return folder / "parse.mjs"


def parse(text: str) -> dict:
    """``{"ok": True, "diagramType": ...}`` or ``{"ok": False, "error": ...}``."""
    script = ensure()
    done = subprocess.run(["node", str(script)], input=text, capture_output=True, text=True,
                          timeout=120)
    lines = done.stdout.strip().splitlines()
    assert lines, f"the mermaid parser printed nothing (exit {done.returncode}): {done.stderr}"
    return json.loads(lines[-1])


if __name__ == "__main__":
    print(ensure())
