"""A wheelhouse of puppetops and its dependencies, built on the controller, to install on a
host that may have no internet (the webhook on main): ``pip install --no-index --find-links``.

The dependencies are pinned to the versions installed here — the ones this controller runs
and was tested with — and puppetops itself is built from its source checkout. A wheelhouse is
kept under a digest of both (and of the Python it is for) in ``~/.cache/puppetops``, so a
re-run with nothing new builds nothing: the digest is what a host records as installed.
"""
from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from .errors import PuppetopsError, UsageError

CACHE = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "puppetops" / "wheelhouse"
KEEP = 3  # wheelhouses kept in the cache
_SOURCE_SUFFIXES = (".py", ".sh", ".html", ".js", ".css")  # code and package data
_SOURCE_FILES = ("setup.cfg", "pyproject.toml")
_PACKAGES = ("puppetops", "plans")
_BUILD_FILES = (*_SOURCE_FILES, "setup.py", "README.md", "MANIFEST.in")


@dataclass(frozen=True)
class Wheelhouse:
    """The wheels for this checkout and Python, in ``folder`` once ``ensure_built`` ran:
    ``requirements`` is what to install from them (pinned names, then puppetops), ``digest``
    names this exact set."""

    digest: str
    folder: Path
    requirements: tuple[str, ...]
    root: Path

    @property
    def files(self) -> list[Path]:
        return sorted(self.folder.glob("*.whl"))

    def ensure_built(self) -> "Wheelhouse":
        """Build it unless the cache has it (dependencies from pip's cache or index);
        ``WheelhouseError`` with pip's last words when pip fails."""
        if not (self.folder / "complete").is_file():
            _build_into(self.folder, self.root, list(self.requirements[:-1]))
        return self


class WheelhouseError(PuppetopsError):
    """pip could not build the wheelhouse on the controller (nothing was changed on hosts)."""


def python_tag() -> str:
    """``MAJOR.MINOR MACHINE`` of the Python running puppetops (the wheels' target)."""
    return f"{sys.version_info.major}.{sys.version_info.minor} {platform.machine()}"


def source_root() -> Path:
    """The source checkout puppetops runs from; ``UsageError`` when it runs from an install."""
    root = Path(__file__).resolve().parent.parent
    if not all((root / name).is_file() for name in _SOURCE_FILES) or not (root / "plans").is_dir():
        raise UsageError(f"puppetops runs from {root}, not from a source checkout: the "
                         "webhook's wheel is built from one (clone the repository and run there)")
    return root


def source_digest(root: Path) -> str:
    """SHA-256 over the package's source files (names and contents), caches ignored."""
    digest = hashlib.sha256()
    files = [root / name for name in _SOURCE_FILES]
    for package in _PACKAGES:
        files += sorted(p for p in (root / package).rglob("*")
                        if p.suffix in _SOURCE_SUFFIXES and "__pycache__" not in p.parts)
    for path in files:
        digest.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def pinned_dependencies(name: str = "puppetops") -> list[str]:
    """``name==version`` for every distribution ``name`` needs (its extras left out), as
    installed here, sorted."""
    from pip._vendor.packaging.requirements import Requirement  # pip is in every venv
    seen: dict[str, str] = {}
    todo = [name]
    while todo:
        dist = importlib.metadata.distribution(todo.pop())
        for text in dist.requires or []:
            req = Requirement(text)
            if req.marker is not None and not req.marker.evaluate({"extra": ""}):
                continue
            key = _normal(req.name)
            if key in seen:
                continue
            try:
                seen[key] = f"{req.name}=={importlib.metadata.version(req.name)}"
            except importlib.metadata.PackageNotFoundError:
                raise UsageError(f"{req.name} (needed by {dist.metadata['Name']}) is not "
                                 "installed here: reinstall puppetops") from None
            todo.append(req.name)
    return sorted(seen.values(), key=str.lower)


def _normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def wheelhouse(cache: Path = CACHE) -> Wheelhouse:
    """The wheelhouse for this checkout and Python, named but not built yet (cheap: a digest
    of the source and the installed versions)."""
    root = source_root()
    pins = pinned_dependencies()
    key = hashlib.sha256("\n".join([source_digest(root), python_tag(), *pins]).encode()).hexdigest()
    return Wheelhouse(key, cache / key[:32], (*pins, "puppetops"), root)


def _build_into(folder: Path, root: Path, pins: list[str]) -> None:
    folder.parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=".building-", dir=folder.parent))
    try:
        # setuptools and wheel here: build with them, no index needed for a build environment
        local = ["--no-build-isolation"] if importlib.util.find_spec("setuptools") and \
            importlib.util.find_spec("wheel") else []
        with tempfile.TemporaryDirectory(prefix="puppetops-source-") as source:
            _pip("wheel", "--no-deps", *local, "-w", str(scratch),
                 str(_clean_copy(root, Path(source))))
        if pins:
            _pip("wheel", "--no-deps", "-w", str(scratch), *pins)
        (scratch / "complete").write_text("\n".join(pins) + "\n")
        shutil.rmtree(folder, ignore_errors=True)
        scratch.rename(folder)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    _prune(folder.parent, KEEP)


def _prune(cache: Path, keep: int) -> None:
    """Only the ``keep`` newest wheelhouses stay (~8 MB each; every code change makes one)."""
    built = sorted((d for d in cache.iterdir() if (d / "complete").is_file()),
                   key=lambda d: (d / "complete").stat().st_mtime, reverse=True)
    for old in built[keep:]:
        shutil.rmtree(old, ignore_errors=True)


def _clean_copy(root: Path, into: Path) -> Path:
    """The files the wheel is made of, copied to ``into``. Built in the checkout itself,
    setuptools would reuse its ``build/`` folder, which keeps modules deleted since the last
    build — and the wheel would install them again (a stale module that no longer imports
    broke the webhook's command line that way)."""
    for name in _BUILD_FILES:
        if (root / name).is_file():
            shutil.copy2(root / name, into / name)
    for package in _PACKAGES:
        shutil.copytree(root / package, into / package,
                        ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    return into


def _pip(*args: str) -> None:
    done = subprocess.run([sys.executable, "-m", "pip", "-q", "--disable-pip-version-check",
                           *args], capture_output=True, text=True)
    if done.returncode:
        last = [line for line in done.stderr.splitlines()
                if line.strip() and "is ignored" not in line][-3:]
        raise WheelhouseError(f"pip {args[0]} failed building the webhook's wheelhouse: "
                         + " / ".join(last))
