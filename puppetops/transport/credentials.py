"""What an SSH connection checks and logs in with: known_hosts files and private keys.

Both are parsed once per run and shared by every connection (``SshCredentials``); a file that
cannot be used is a ``ConfigError`` naming it, raised before the run starts.
"""
from __future__ import annotations

import base64
import hmac
import os
import threading

import paramiko
from paramiko.hostkeys import HostKeyEntry

from ..errors import ConfigError, HostKeyError


def known_hosts_name(host: str, port: int) -> str:
    """The name a known_hosts line gives a host: OpenSSH writes port 22 (its own, not the
    inventory's default) bare and every other port as ``[host]:port``."""
    return host if port == 22 else f"[{host}]:{port}"


class SshCredentials:
    """Known-hosts files and private keys, parsed once per run and shared by every connection.

    Parsing a 200-line known_hosts file for each of 200 connections would cost more CPU than
    the handshakes themselves. A file that cannot be used raises ``ConfigError`` naming it.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._known_hosts: dict[str, _KnownHosts] = {}
        self._keys: dict[str, paramiko.PKey] = {}

    def known_hosts(self, path: str, host: str, port: int) -> paramiko.HostKeys:
        """The entries of the known_hosts file ``path`` that can match ``host``:``port``."""
        with self._lock:
            if path not in self._known_hosts:
                self._known_hosts[path] = _KnownHosts(path)
            return self._known_hosts[path].for_host(host, port)

    def private_key(self, path: str) -> paramiko.PKey:
        with self._lock:
            if path not in self._keys:
                self._keys[path] = _load_private_key(path)
            return self._keys[path]


def _load_private_key(path: str) -> paramiko.PKey:
    where = f"private key file {path} (config.ssh.private-key)"
    if not os.path.exists(path):
        raise ConfigError(f"{where} does not exist; point it at the key to log in with")
    try:
        return paramiko.PKey.from_path(path)
    except paramiko.PasswordRequiredException:
        raise ConfigError(f"{where} is encrypted; puppetops needs a key without a passphrase "
                          "(or one decrypted for the run)") from None
    except OSError as exc:
        raise ConfigError(f"{where} cannot be read: {exc.strerror or exc}") from None
    except (paramiko.SSHException, ValueError) as exc:
        raise ConfigError(f"{where} is not a private key paramiko can read ({exc}); use an "
                          "OpenSSH or PEM private key file") from None


class _KnownHosts:
    """One parsed known_hosts file, indexed by host name.

    paramiko's ``HostKeys.lookup`` scans every entry, hashing the name in Python for each hashed
    (``|1|``, OpenSSH's ``HashKnownHosts``) entry, and ``SSHClient.connect`` looks up twice: N
    connections against an N-line file cost O(N²) (docs/benchmarks.md, "What changed in the transport", 7, has the
    figures). Here plain names are a dict lookup and hashed entries are matched with one
    C-level HMAC each; every connection then gets a small ``HostKeys`` with only its matching
    entries, on which paramiko's own checks give the same answers as on the whole file.
    """

    def __init__(self, path: str):
        # (line position, entry): matches are returned in file order, as paramiko would
        self._by_name: dict[str, list[tuple[int, HostKeyEntry]]] = {}
        self._hashed: list[tuple[bytes, bytes, int, HostKeyEntry]] = []
        for position, entry in enumerate(_read_entries(path)):
            for name in entry.hostnames:
                if not name.startswith("|1|"):
                    self._by_name.setdefault(name, []).append((position, entry))
                    continue
                salt, _, digest = name[3:].partition("|")
                try:
                    self._hashed.append((base64.b64decode(salt), base64.b64decode(digest),
                                         position, entry))
                except ValueError:  # a mangled hash matches no name, for paramiko too
                    pass

    def for_host(self, host: str, port: int) -> paramiko.HostKeys:
        """Entries for the name paramiko will look up (``host``, or ``[host]:port`` off 22)."""
        name = known_hosts_name(host, port)
        raw = name.encode()
        matches = list(self._by_name.get(name, ()))
        matches += [(position, entry) for salt, digest, position, entry in self._hashed
                    if hmac.compare_digest(hmac.digest(salt, raw, "sha1"), digest)]
        keys = paramiko.HostKeys()
        keys._entries = [entry for _, entry in sorted(matches, key=lambda match: match[0])]
        return keys


def _read_entries(path: str) -> list[HostKeyEntry]:
    """The file's entries in order, as ``HostKeys.load`` reads them but in linear time.

    ``load`` also drops a name already listed with the same key, looking each one up in all
    earlier lines (O(N²)); a duplicate is harmless here, as lookups
    return the first match either way.
    """
    where = f"known_hosts file {path}"
    try:
        with open(path, "rb") as handle:
            data = handle.read()
    except FileNotFoundError:
        raise ConfigError(f"{where} does not exist; create it with the hosts' keys (ssh-keyscan, "
                          "then check the fingerprints) or set config.ssh.known-hosts-file to "
                          "yours") from None
    except OSError as exc:
        raise ConfigError(f"{where} cannot be read: {exc.strerror or exc}") from None
    try:
        text = data.decode()
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise ConfigError(f"{where} is not a known_hosts file: line {line} is not text (byte "
                          f"{data[exc.start]:#04x}); it must hold OpenSSH known_hosts lines") from None
    entries = []
    for lineno, line in enumerate(text.split("\n"), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        try:
            entry = HostKeyEntry.from_line(line, lineno)
        except paramiko.SSHException:
            continue
        if entry is not None:
            entries.append(entry)
    return entries


class RejectUnknownHost(paramiko.MissingHostKeyPolicy):
    def missing_host_key(self, client, hostname, key):  # noqa: D102 - paramiko hook
        raise HostKeyError(
            f"host key for {hostname} is not in the known_hosts file ({key.get_name()} "
            f"{key.fingerprint}); add it or set host-key-check: false")


class AcceptUnknownHost(paramiko.MissingHostKeyPolicy):
    """``host-key-check: false``: accept without recording anything."""

    def missing_host_key(self, client, hostname, key):  # noqa: D102 - paramiko hook
        return
