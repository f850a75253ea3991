"""Target URI parsing: ``ssh://user@host:2222``, ``user@host``, ``host:2222``, ``host``, ``local://name``.

Any of Bolt's transports is a valid scheme (``winrm://host``): such targets load, and only a run
that selects one is refused (see ``schema.OTHER_BOLT_TRANSPORTS``).

As in Bolt, a string without ``scheme://`` is read as if ``//`` were in front of it, so the short
forms mean the same as the full one with the scheme left to config.
"""
from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

from .schema import BOLT_TRANSPORTS


class UriError(ValueError):
    """An unusable target URI; the caller adds where it came from."""


@dataclass(frozen=True)
class TargetUri:
    """What a URI says about a target; ``None`` where it says nothing (config then decides)."""

    transport: str | None
    host: str
    port: int | None
    user: str | None


def parse_uri(uri: str) -> TargetUri:
    """Parse a target URI, raising ``UriError`` with a message fit for the user."""
    try:
        parts = urlsplit(uri if "://" in uri else "//" + uri)
        port = parts.port  # raises ValueError for a non-numeric or out-of-range port
    except ValueError:
        raise UriError(f"Invalid target uri {uri}") from None
    if parts.scheme and parts.scheme not in BOLT_TRANSPORTS:
        raise UriError(f"Unknown transport {parts.scheme} found for {uri}"
                       f" (known: {', '.join(BOLT_TRANSPORTS)})")
    if not parts.hostname or port == 0 or parts.path or parts.query or parts.fragment:
        raise UriError(f"Invalid target uri {uri}")
    if parts.password is not None:
        raise UriError(f"Target uri {parts.scheme + '://' if parts.scheme else ''}{parts.username}:***@"
                       f"{parts.hostname} contains a password; secrets are not read from the inventory "
                       f"file (use an SSH key, and {{_plugin: env_var, var: NAME}} for sudo-password)")
    return TargetUri(transport=parts.scheme or None, host=parts.hostname, port=port,
                     user=unquote(parts.username) if parts.username else None)
