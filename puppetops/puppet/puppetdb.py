"""PuppetDB knowledge: where Debian's and the AIO packages keep it, and the text of every file
install_puppetdb manages — PuppetDB's jetty.ini, database.ini and certificate allow-list, the
servers' puppetdb.conf and routes.yaml — as pure functions (text in, text out).

Nothing here runs on a host. The paths and the JVM command line are the packages' own
(Debian's puppetdb 7.12.1-3: /lib/systemd/system/puppetdb.service; docs/puppet-pitfalls.md).
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import re
from dataclasses import dataclass
from typing import Iterable

import yaml

from . import conf
from .layout import Layout

GROUP = "puppetdb"      # the inventory group naming PuppetDB's host (without one: main)
PORT = 8081             # HTTPS, client certificates (what the servers and we use)
HTTP_PORT = 8080        # plain HTTP, bound to localhost by the package's jetty.ini
DATABASE = ROLE = "puppetdb"
STATUS_PATH = "/status/v1/services/puppetdb-status"
SERVER_SETTINGS = {"storeconfigs": "true", "storeconfigs_backend": "puppetdb",
                   "reports": "store,puppetdb"}


@dataclass(frozen=True)
class PuppetdbLayout:
    """Where one package layout keeps PuppetDB and the servers' terminus."""

    packages: tuple[str, ...]      # the PuppetDB host's
    terminus_package: str          # every Puppet Server's
    confdir: str                   # holds conf.d/ and bootstrap.cfg
    defaults: str                  # JAVA_ARGS
    rundir: str
    logdir: str
    jvm_main: tuple[str, ...]      # after `java $JAVA_ARGS`, up to --config
    ssl_copied: bool               # AIO's ssl-setup copies the host's certificate; Debian's points
    user: str = "puppetdb"

    @property
    def confd(self) -> str:
        return f"{self.confdir}/conf.d"

    @property
    def bootstrap_config(self) -> str:
        return f"{self.confdir}/bootstrap.cfg"

    @property
    def jetty_ini(self) -> str:
        return f"{self.confd}/jetty.ini"

    @property
    def database_ini(self) -> str:
        return f"{self.confd}/database.ini"

    @property
    def puppetdb_ini(self) -> str:
        """Our own file in conf.d: the ``[puppetdb]`` section (no package file has one)."""
        return f"{self.confd}/puppetdb.ini"

    @property
    def allowlist(self) -> str:
        return f"{self.confdir}/certificate-allowlist"

    @property
    def ssl_dir(self) -> str:
        return f"{self.confdir}/ssl"

    @property
    def restart_file(self) -> str:
        return f"{self.rundir}/restart"

    @property
    def pidfile(self) -> str:
        return f"{self.rundir}/puppetdb.pid"


_DEBIAN_JAR = "/usr/share/puppetdb/puppetdb.jar"
_AIO_JAR = "/opt/puppetlabs/server/apps/puppetdb/puppetdb.jar"
_JVM_COMMON = ("-Djava.security.egd=/dev/urandom", "-XX:OnOutOfMemoryError=kill -9 %p")

LAYOUTS = {
    # /lib/systemd/system/puppetdb.service of puppetdb 7.12.1-3 (its init script runs a
    # namespace the jar does not have: the PuppetDB pitfalls)
    "debian": PuppetdbLayout(
        packages=("puppetdb", "postgresql", "curl"), terminus_package="puppet-terminus-puppetdb",
        confdir="/etc/puppetdb", defaults="/etc/default/puppetdb",
        rundir="/run/puppetdb", logdir="/var/log/puppetdb",
        jvm_main=(*_JVM_COMMON, "-cp", _DEBIAN_JAR, "clojure.main",
                  "-m", "puppetlabs.puppetdb.core", "services"),
        ssl_copied=False),
    # ezbake's unit for the AIO puppetdb package (not verified on a host here)
    "aio": PuppetdbLayout(
        packages=("puppetdb", "postgresql", "postgresql-contrib", "curl"),
        terminus_package="puppetdb-termini",
        confdir="/etc/puppetlabs/puppetdb", defaults="/etc/default/puppetdb",
        rundir="/run/puppetlabs/puppetdb", logdir="/var/log/puppetlabs/puppetdb",
        jvm_main=(*_JVM_COMMON, "-cp", _AIO_JAR, "clojure.main",
                  "-m", "puppetlabs.puppetdb.core", "services"),
        ssl_copied=True),
}


def layout_of(layout: Layout) -> PuppetdbLayout:
    """PuppetDB's layout on a host with Puppet layout ``layout``."""
    return LAYOUTS[layout.name]


@dataclass(frozen=True)
class SslFiles:
    """The TLS files PuppetDB's jetty serves with: the host's own Puppet certificate."""

    key: str
    cert: str
    ca: str


def host_ssl(layout: Layout, certname: str) -> SslFiles:
    """The host's Puppet key, certificate and CA bundle in its ssldir."""
    return SslFiles(f"{layout.ssldir}/private_keys/{certname}.pem",
                    f"{layout.ssldir}/certs/{certname}.pem", f"{layout.ssldir}/certs/ca.pem")


def jetty_ssl(layout: Layout, certname: str) -> SslFiles:
    """What jetty.ini points at: Debian's ``puppetdb ssl-setup`` points at the ssldir (and
    puts user puppetdb in group puppet to read the key); the AIO one copies the files into
    PuppetDB's own ssl directory."""
    pdb = layout_of(layout)
    if pdb.ssl_copied:
        return SslFiles(f"{pdb.ssl_dir}/private.pem", f"{pdb.ssl_dir}/public.pem",
                        f"{pdb.ssl_dir}/ca.pem")
    return host_ssl(layout, certname)


def jetty_ini(text: str | None, ssl: SslFiles) -> str:
    """jetty.ini serving HTTPS on every address with the host's certificate; the plain HTTP
    port stays as the package has it (localhost only)."""
    return conf.puppet_conf(text, {"jetty": {"ssl-host": "0.0.0.0", "ssl-port": str(PORT),
                                             "ssl-key": ssl.key, "ssl-cert": ssl.cert,
                                             "ssl-ca-cert": ssl.ca}})


def puppetdb_ini(text: str | None, pdb: PuppetdbLayout) -> str:
    """conf.d/puppetdb.ini: only the certificates in the allow-list may use the API."""
    return conf.puppet_conf(text, {"puppetdb": {"certificate-allowlist": pdb.allowlist}})


def database_ini(text: str | None, password: str) -> str:
    """database.ini: PuppetDB's database on the local PostgreSQL, over TCP (password auth in
    Debian's pg_hba.conf, where a Unix socket would want peer auth as user puppetdb)."""
    return conf.puppet_conf(text, {"database": {
        "subname": f"//127.0.0.1:5432/{DATABASE}", "username": ROLE, "password": password}})


def database_password(text: str | None) -> str | None:
    """The password in a database.ini, or None."""
    section = None
    for line in (text or "").splitlines():
        header = re.match(r"^\s*\[([^\]]+)\]\s*$", line)
        if header:
            section = header.group(1).strip()
            continue
        setting = re.match(r"^\s*password\s*=\s*(.*?)\s*$", line)
        if section == "database" and setting and setting.group(1):
            return setting.group(1)
    return None


# -- the certificate allow-list ---------------------------------------------------------------

ALLOWLIST_HEADER = "# certnames allowed to use PuppetDB's API (puppetops install_puppetdb)"


def allowlist_names(text: str | None) -> list[str]:
    """The certnames in an allow-list file (one a line; comments and blanks skipped)."""
    return [line.strip() for line in (text or "").splitlines()
            if line.strip() and not line.strip().startswith("#")]


def allowlist(text: str | None, add: Iterable[str] = (), remove: Iterable[str] = ()) -> str:
    """The allow-list with ``add`` present and ``remove`` gone; every other line (comments, the
    operator's own names) stays where it was, new names are appended in the order given."""
    gone = set(remove)
    lines = [line for line in (text or "").splitlines() if line.strip() not in gone]
    present = set(allowlist_names("\n".join(lines)))
    if not lines:
        lines = [ALLOWLIST_HEADER]
    lines += [name for name in dict.fromkeys(add) if name not in present and name not in gone]
    return "\n".join(lines) + "\n"


# -- the servers' terminus ---------------------------------------------------------------------

def server_url(certname: str) -> str:
    return f"https://{certname}:{PORT}"


def puppetdb_conf(text: str | None, certname: str) -> str:
    """puppetdb.conf of a Puppet Server: PuppetDB's URL; a failed write fails the run (the
    default) rather than losing a catalog, facts or report quietly."""
    return conf.puppet_conf(text, {"main": {"server_urls": server_url(certname)}})


ROUTE = {"terminus": "puppetdb", "cache": "yaml"}


def routes_yaml(text: str | None) -> str:
    """routes.yaml with the server's facts stored in PuppetDB (cached as YAML, as PuppetDB's
    docs have it); other routes stay. ``master`` is the key every Puppet from 6 on reads
    (Puppet 7 maps it to ``server``). ``ValueError`` for a file that is not a YAML mapping."""
    data = yaml.safe_load(text or "") or {}
    if not isinstance(data, dict):
        raise ValueError("routes.yaml is not a YAML mapping")
    key = "server" if "server" in data and "master" not in data else "master"
    section = data.get(key) or {}
    if not isinstance(section, dict):
        raise ValueError(f"routes.yaml: {key} is not a mapping")
    if section.get("facts") == ROUTE and text:
        return text
    data[key] = {**section, "facts": dict(ROUTE)}
    return "---\n" + yaml.safe_dump(data, sort_keys=False)


# -- the database role's password --------------------------------------------------------------

SCRAM_ITERATIONS = 4096  # PostgreSQL's scram_iterations default


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def scram_verifier(password: str, salt: bytes, iterations: int = SCRAM_ITERATIONS) -> str:
    """PostgreSQL's SCRAM-SHA-256 verifier of ``password`` (RFC 5803, what ``rolpassword``
    holds). ``ALTER ROLE ... PASSWORD 'SCRAM-SHA-256$...'`` stores it as it is, so the
    password itself never reaches the server, its logs or a command line."""
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations)
    client_key = hmac.new(salted, b"Client Key", "sha256").digest()
    server_key = hmac.new(salted, b"Server Key", "sha256").digest()
    return (f"SCRAM-SHA-256${iterations}:{_b64(salt)}$"
            f"{_b64(hashlib.sha256(client_key).digest())}:{_b64(server_key)}")


_VERIFIER = re.compile(r"^SCRAM-SHA-256\$(\d+):([A-Za-z0-9+/=]+)\$[A-Za-z0-9+/=]+:[A-Za-z0-9+/=]+\Z")


def scram_matches(verifier: str | None, password: str) -> bool:
    """Whether a stored SCRAM verifier is the one of ``password``."""
    m = _VERIFIER.match((verifier or "").strip())
    if not m:
        return False
    wanted = scram_verifier(password, base64.b64decode(m.group(2)), int(m.group(1)))
    return hmac.compare_digest(wanted, verifier.strip())
