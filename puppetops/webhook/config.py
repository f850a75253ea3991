"""The webhook's settings: a YAML file, then command-line flags over it, then the secret.

The shared secret never comes from the command line (it would show in ``ps`` and shell
history) nor from the config file itself (which is meant to be readable, copied around and
kept in git): only from ``PUPPETOPS_WEBHOOK_SECRET`` or a ``secret_file`` that only its owner
can read. Without a secret the server refuses to start unless ``allow_unsigned`` says, in so
many words, that anyone who can reach the port may trigger deploys.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from typing import Any

import yaml

from .. import bounds
from ..bounds import Bound
from ..errors import UsageError
from ..puppet import names
from .. import secrets

SECRET_ENV = "PUPPETOPS_WEBHOOK_SECRET"
DEFAULT_PORT = 8088
DELETED_BRANCHES = ("remove", "keep")  # what a deleted branch does to its environment
STOP_GRACE = bounds.at_least(0, "a whole number of seconds")  # 0: interrupt a deploy at once
NO_SECRET = (f"no webhook secret: set the environment variable {SECRET_ENV} or `secret_file` in "
             "the config (or `allow_unsigned: true` to accept unsigned requests)")


@dataclass(frozen=True)
class WebhookConfig:
    """Everything the server needs; ``secret`` is None only with ``allow_unsigned``."""

    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    inventory: str | None = None
    secret: str | None = field(default=None, repr=False)
    allow_unsigned: bool = False
    prefix: str = ""             # environment = prefix + "_" + branch (r10k's source prefix)
    deleted_branches: str = "remove"  # or "keep": leave a deleted branch's environment
    database: str = "webhook.sqlite3"
    log_file: str | None = None  # JSON lines; None: stderr
    max_body_bytes: int = 1024 * 1024
    workers: int = 2             # deploys of different environments at once
    threads: int = 8             # HTTP request threads
    stop_grace: int = 300        # seconds a running deploy may take to finish at a stop
    main: str = "main"           # deploy_code's targets, as in `invoke deploy-code`
    targets: str = "main,compilers"
    loadbalancers: str = "loadbalancers"
    # GET /: the fleet's status page. Off unless asked for: the page tells whoever reaches
    # the port every host, commit and certificate of the fleet (install_webhook turns it on)
    status_page: bool = False
    status_refresh: int = 10      # seconds between the page's refreshes (and gathers)
    mermaid_js: str | None = None  # mermaid.min.js to serve; None: the controller's cache


# key → (type, what is expected) or the bounded number it is; ``secret`` is deliberately
# absent: see the module docstring
_KEYS: dict[str, tuple[type, str] | Bound] = {
    "listen": (str, "HOST:PORT"),
    "inventory": (str, "a path"),
    "secret_file": (str, "a path to a file only its owner can read"),
    "allow_unsigned": (bool, "true or false"),
    "prefix": (str, "letters, digits and underscores"),
    "deleted_branches": (str, " or ".join(DELETED_BRANCHES)),
    "database": (str, "a path"),
    "log_file": (str, "a path"),
    "max_body_bytes": bounds.at_least(1, "a number of bytes"),
    "workers": bounds.COUNT,
    "threads": bounds.COUNT,
    "stop_grace": STOP_GRACE,
    "main": (str, "a target name"),
    "targets": (str, "a target spec"),
    "loadbalancers": (str, "a target spec"),
    "status_page": (bool, "true or false"),
    "status_refresh": bounds.at_least(1, "a whole number of seconds"),
    "mermaid_js": (str, "a path"),
}
_PATHS = ("inventory", "secret_file", "database", "log_file", "mermaid_js")


def load(path: str | None = None, flags: dict[str, Any] | None = None,
         environ: dict[str, str] | None = None) -> WebhookConfig:
    """The config from ``path`` (YAML; relative paths in it are relative to the file), with
    ``flags`` (the same keys; None means not given) over it. ``UsageError`` naming the file
    and key for anything wrong, including a missing secret."""
    values = _read_file(path) if path else {}
    for key, value in values.items():
        _check(key, value, str(path))
    given = {k: v for k, v in (flags or {}).items() if v is not None}
    for key, value in given.items():
        _check(key, value, "command line")
    values.update(given)
    where = path or "command line"
    settings: dict[str, Any] = {}
    if "listen" in values:
        settings["host"], settings["port"] = parse_listen(values.pop("listen"))
    secret_file = values.pop("secret_file", None)
    if values.get("prefix"):
        _prefix(values["prefix"], where)
    settings.update(values)
    config = replace(WebhookConfig(), **settings)
    secret = read_secret(secret_file, os.environ if environ is None else environ)
    if secret and config.allow_unsigned:
        raise UsageError("allow_unsigned is set but so is a secret: choose one (a secret, so "
                         "that requests are verified)")
    if not secret and not config.allow_unsigned:
        raise UsageError(NO_SECRET)
    return replace(config, secret=secrets.register(secret) if secret else None)


def parse_listen(text: str) -> tuple[str, int]:
    """``HOST:PORT``, ``[IPv6]:PORT``, ``:PORT`` (every address) or ``HOST`` (port 8088)."""
    host, sep, port = text.rpartition(":") if not text.endswith("]") else ("", "", "")
    if not sep:
        host, port = text, str(DEFAULT_PORT)
    host = host.strip("[]") if host.startswith("[") else host
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise UsageError(f"--listen: expected HOST:PORT with a port from 1 to 65535, got {text!r}")
    return host or "0.0.0.0", int(port)


def read_secret(secret_file: str | None, environ: dict[str, str]) -> str | None:
    """The secret from the environment, else from ``secret_file`` — which must be a regular
    file that neither group nor others can read or write (like ssh's private keys)."""
    if environ.get(SECRET_ENV):
        return environ[SECRET_ENV]
    if not secret_file:
        return None
    return secrets.read_file(secret_file, "secret_file")


def _read_file(path: str) -> dict[str, Any]:
    try:
        with open(path, encoding="utf-8") as handle:
            data = yaml.safe_load(handle)
    except OSError as exc:
        raise UsageError(f"{path}: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f":{mark.line + 1}" if mark else ""
        raise UsageError(f"{path}{line}: not valid YAML") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise UsageError(f"{path}: expected a mapping of settings")
    base = os.path.dirname(os.path.abspath(path))
    for key in _PATHS:
        if isinstance(data.get(key), str):
            data[key] = os.path.join(base, os.path.expanduser(data[key]))
    return data


def _check(key: str, value: Any, where: str) -> None:
    if key == "secret":
        raise UsageError(f"{where}: secret: not accepted here; use {SECRET_ENV} or secret_file")
    if key not in _KEYS:
        known = ", ".join(sorted(_KEYS))
        raise UsageError(f"{where}: unknown setting {key!r} (known: {known})")
    spec = _KEYS[key]
    if isinstance(spec, Bound):
        spec.check(value, f"{where}: {key}")
        return
    kind, expected = spec
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)) \
            or (key == "deleted_branches" and value not in DELETED_BRANCHES):
        raise UsageError(f"{where}: {key}: expected {expected}, got {value!r}")


def _prefix(prefix: str, where: str) -> None:
    if not names.ENVIRONMENT.match(prefix):
        raise UsageError(f"{where}: prefix: expected letters, digits and underscores, "
                         f"got {prefix!r}")

