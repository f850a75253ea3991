"""PuppetDB's PostgreSQL database on the PuppetDB host: the server running, the role and the
database, and database.ini holding the role's password.

The password is generated once, for this host, and lives only in database.ini there (mode
0600, owner puppetdb: the one process that needs it). The controller reads it for the length
of a step — registered as a secret, so it is masked in every output and log — and gives
PostgreSQL only its SCRAM verifier (``puppet.puppetdb.scram_verifier``): the password is never
in a command line, in SQL, in PostgreSQL's logs, or stored anywhere else.
"""
from __future__ import annotations

import secrets as token
import shlex

from ... import secrets
from ...errors import StepError
from ...puppet import node, puppetdb
from ...step import Finding, Step, StepContext
from ..services import Service

MARKER = "# managed by puppetops install_puppetdb: the password was generated on this host"
DATABASE, ROLE = puppetdb.DATABASE, puppetdb.ROLE
# peer authentication as the postgres superuser, SQL on stdin; cwd readable by postgres
PSQL = "cd / && runuser -u postgres -- psql -XAtq -v ON_ERROR_STOP=1"


def postgres_running() -> Service:
    """PostgreSQL runs: systemd, else the package's init script, which works without systemd
    (pg_ctlcluster starts the cluster detached, with its own pid file)."""
    return Service("postgresql")


def _password(ctx: StepContext, text: str | None = None) -> str | None:
    """The password in this host's database.ini when puppetops generated it, registered."""
    if text is None:
        text = ctx.read(puppetdb.layout_of(node.layout(ctx.target)).database_ini, secret=True)
    if not text or MARKER not in text:
        return None
    found = puppetdb.database_password(text)
    return secrets.register(found) if found else None


class DatabaseConfig(Step):
    """database.ini points PuppetDB at the local database with a password generated for this
    host (a file puppetops did not write — Debian's dbconfig-common one — gets a new one);
    mode 0600, owner puppetdb."""

    name = "PuppetDB database.ini"

    def find(self, ctx: StepContext) -> Finding:
        pdb = puppetdb.layout_of(node.layout(ctx.target))
        path, q = pdb.database_ini, shlex.quote(pdb.database_ini)
        current = ctx.read(path, secret=True)
        password = _password(ctx, current) or secrets.register(token.token_hex(24))
        body = current if current and MARKER in current else None
        wanted = puppetdb.database_ini(f"{MARKER}\n" if body is None else body, password)
        owner = f"{pdb.user}:{pdb.user}"
        mode = ctx.run(f"stat -c '%a %U:%G' {q} 2>/dev/null || true").stdout.split()
        todo = []
        if current != wanted:
            todo.append(f"{'write' if current is None else 'rewrite'} {path} with "
                        f"{'the' if body else 'a new'} password")
        if mode != ["600", owner]:
            todo.append(f"make {path} mode 600, owner {owner}")
        return Finding("; ".join(todo) or None, state=(wanted, owner))

    def apply(self, ctx: StepContext, found: Finding) -> None:
        wanted, owner = found.state
        path = puppetdb.layout_of(node.layout(ctx.target)).database_ini
        ctx.put(wanted, path, mode=0o600)
        ctx.run(f"chown {shlex.quote(owner)} {shlex.quote(path)} && chmod 600 {shlex.quote(path)}")
        left = self.find(ctx).todo
        if left:
            raise StepError(f"still not in the desired state after the change: {left}")


def _query(ctx: StepContext, sql: str, database: str = "postgres") -> list[list[str]]:
    out = ctx.run(f"{PSQL} -d {shlex.quote(database)}", stdin=sql)
    return [line.split("|") for line in out.stdout.splitlines() if line]


class DatabaseRole(Step):
    """PostgreSQL has role puppetdb (login, with database.ini's password), database puppetdb
    owned by it (UTF-8) and the pg_trgm extension PuppetDB's queries need (only a superuser
    may create it)."""

    name = "PuppetDB database and role"

    def find(self, ctx: StepContext) -> Finding:
        try:
            rows = _query(ctx, f"SELECT 'role', coalesce(rolpassword, '') FROM pg_authid "
                               f"WHERE rolname = '{ROLE}';\n"
                               f"SELECT 'database', pg_get_userbyid(datdba) FROM pg_database "
                               f"WHERE datname = '{DATABASE}';\n")
        except StepError as exc:  # not started yet in a noop run; a real run fails in apply
            return Finding(f"create role {ROLE} and database {DATABASE} once PostgreSQL "
                           f"answers (now: {exc})")
        found = {row[0]: row[1] for row in rows if len(row) == 2}
        verifier = found.get("role", "")
        password = _password(ctx)
        todo = []
        if "role" not in found:
            todo.append(f"create role {ROLE}")
        elif password is None or not puppetdb.scram_matches(verifier, password):
            todo.append(f"set role {ROLE}'s password to database.ini's")
        if "database" not in found:
            todo.append(f"create database {DATABASE}")
        elif found["database"] != ROLE:
            todo.append(f"make {ROLE} own database {DATABASE}")
        elif not _query(ctx, "SELECT 1 FROM pg_extension WHERE extname = 'pg_trgm';\n", DATABASE):
            todo.append("create extension pg_trgm")
        return Finding("; ".join(todo) or None, state=password)

    def apply(self, ctx: StepContext, found: Finding) -> None:
        password = _password(ctx)
        if password is None:
            raise StepError("database.ini has no password generated by puppetops")
        verifier = puppetdb.scram_verifier(password, token.token_bytes(16))
        _query(ctx, "\n".join([
            f"SELECT 'CREATE ROLE {ROLE} LOGIN' WHERE NOT EXISTS "
            f"(SELECT FROM pg_roles WHERE rolname = '{ROLE}')\\gexec",
            f"ALTER ROLE {ROLE} WITH LOGIN PASSWORD '{verifier}';",
            # C collation: valid with UTF-8 whatever locale the cluster was created with
            f"SELECT 'CREATE DATABASE {DATABASE} OWNER {ROLE} ENCODING ''UTF8'' LC_COLLATE ''C'' "
            f"LC_CTYPE ''C'' TEMPLATE template0' WHERE NOT EXISTS "
            f"(SELECT FROM pg_database WHERE datname = '{DATABASE}')\\gexec",
            f"ALTER DATABASE {DATABASE} OWNER TO {ROLE};", ""]))
        _query(ctx, "CREATE EXTENSION IF NOT EXISTS pg_trgm;\n", DATABASE)
        left = self.find(ctx).todo
        if left:
            raise StepError(f"still not in the desired state after the change: {left}")
