"""Steps of deploy_code on one server: the deployer is there, an environment is deployed, and
Puppet Server's cache of it is flushed once per deploy.

The flush remembers which deploy it flushed (a marker holding the deploy record's commit and
finish time, as read before the flush), so it is idempotent in the way an operator expects: a
re-run with nothing new deployed flushes nothing, while a flush that failed or was withheld
(the servers differed) is done by the next run that finds the servers consistent.
"""
from __future__ import annotations

import shlex
from dataclasses import asdict
from typing import Any, Callable, Mapping

from ...errors import StepError
from ...puppet import names, node
from ...step import Finding, Step, StepContext
from ...transport.base import CommandOutput
from . import deployers, resource_types
from .deployers import Deployed

FLUSH_MARKERS = "/var/lib/puppetops/environment-cache"
ADMIN_API = "/puppet-admin-api/v1/environment-cache"
FLUSHED = "204"


def record_path(ctx: StepContext, environment: str) -> str:
    """The deploy record of ``environment`` on the server, as its deployer writes it."""
    return deployers.of(ctx.target).record_path(node.layout(ctx.target), environment)


def read_deployed(ctx: StepContext, environment: str) -> Deployed | None:
    return deployers.parse_record(ctx.read(record_path(ctx, environment)))


def _plain(record: Deployed | None) -> dict[str, Any] | None:
    return asdict(record) if record else None


def deployed(environments: list[str]) -> Callable[[StepContext], dict[str, Any]]:
    """A read-only function for ``run.each``: environment → its deploy record as a dict (or
    None), plain data so it shows in JSON results."""
    def read(ctx: StepContext) -> dict[str, Any]:
        return {env: _plain(read_deployed(ctx, env)) for env in environments}
    return read


class DeployerInstalled(Step):
    """The server's deployer (var code_deployer) is installed: r10k as the stand-up installs
    it, g10k from the OS package (Debian ships it)."""

    name = "code deployer installed"
    timeout = 900.0

    def check(self, ctx: StepContext) -> str | None:
        deployer = deployers.of(ctx.target)
        exe = deployer.binary(node.layout(ctx.target))
        return None if ctx.test(f"[ -x {shlex.quote(exe)} ]") else f"install {deployer.name}"

    def change(self, ctx: StepContext) -> None:
        deployers.of(ctx.target).installed().change(ctx)


def deploy_error(output: str) -> str:
    """The lines of a deployer's output that say what went wrong (r10k prints a stack of
    context lines and ends with the least useful one, "Exit code: 128")."""
    lines = [" ".join(line.split()) for line in output.splitlines() if line.strip()]
    telling = [line for line in lines if line.startswith(("ERROR", "fatal:", "error:"))
               or "Error" in line]
    return " / ".join(telling or lines[-1:]) or "no output"


_SEPARATOR = "---puppetops-file---"


def read_files(ctx: StepContext, paths: list[str]) -> list[str | None]:
    """Several remote files in one command: each one's content, or None where it does not
    exist (as ``ctx.read`` gives them one by one)."""
    quoted = " ".join(shlex.quote(p) for p in paths)
    out = ctx.run(f"for f in {quoted}; do if [ -e \"$f\" ]; then printf +; cat \"$f\" || exit 1; "
                  f"else printf %s -; fi; printf '\\n%s\\n' {_SEPARATOR}; done")
    parts = out.stdout.split(f"\n{_SEPARATOR}\n")[:len(paths)]
    if len(parts) != len(paths):
        raise StepError(f"cannot read {', '.join(paths)}: unexpected output")
    return [part[1:] if part.startswith("+") else None for part in parts]


class EnvironmentDeploy(Step):
    """``environment`` is deployed at ``head`` (its branch head when the plan started), and
    its custom resource types are generated for that deploy (``resource_types``).

    Unchanged when the server's record says a successful deploy of ``head`` and the types
    marker names that deploy. With ``modules`` the deployer always runs: Puppetfile modules
    may float (branches, unpinned versions), so only a run can tell. Git and network faults
    are retried like transport faults; a failed deploy leaves the previous code in place, and
    a failed generation fails the deploy (so nothing is flushed) and is retried by the next
    run, so re-running is safe.
    """

    timeout = 900.0
    retry_on_failure = True
    waits_for = "the code deployer (r10k or g10k) to finish"

    def __init__(self, environment: str, head: str, *, branch: str | None = None,
                 modules: bool = False, incremental: bool = False):
        super().__init__()
        self.environment, self.head = names.environment(environment), head
        self.branch = names.environment(branch or environment)  # they differ under a prefix
        self.modules, self.incremental = modules or incremental, incremental
        self.name = f"deploy {self.environment}"

    def _state(self, ctx: StepContext) -> tuple[Deployed | None, str]:
        """(the deploy record, the deploy whose resource types were generated), one read."""
        record, generated = read_files(ctx, [record_path(ctx, self.environment),
                                             resource_types.marker(self.environment)])
        return deployers.parse_record(record), (generated or "").strip()

    def find(self, ctx: StepContext) -> Finding:
        """What to do, the record read (for ``apply``), and as the value that record as
        ``deployed`` gives it: the plan compares servers without reading every record again.
        After a deploy the record says ``head``, deployed (its time is not known before)."""
        record, generated = self._state(ctx)
        after = Deployed(self.head, True) if self._deploy_needed(record) else record
        return Finding(self._needed(record, generated), record, _plain(record), _plain(after))

    def _deploy_needed(self, record: Deployed | None) -> str | None:
        at = record.signature if record and record.success else None
        if at == self.head and not self.modules:
            return None
        move = f"at {self.head[:10]}" if at == self.head else f"{(at or '')[:10]} → {self.head[:10]}"
        return f"deploy {self.environment}{' with its modules' if self.modules else ''} ({move})"

    def _needed(self, record: Deployed | None, generated: str) -> str | None:
        deploy = self._deploy_needed(record)
        if deploy or generated == record.stamp:
            return deploy
        return f"generate the resource types of {self.environment}"

    def change(self, ctx: StepContext) -> None:
        deployer = deployers.of(ctx.target)
        out = ctx.run(deployer.deploy_command(node.layout(ctx.target), self.environment,
                                              self.branch,
                                              modules=self.modules, incremental=self.incremental),
                      check=False)
        if not out.ok:
            why = deploy_error(out.stdout + out.stderr)
            raise StepError(f"{deployer.name} exited {out.exit_code}: {why}",
                            exit_code=out.exit_code, stdout=out.stdout, stderr=out.stderr)

    def _generate(self, ctx: StepContext, record: Deployed) -> None:
        out = ctx.run(resource_types.generate_command(node.layout(ctx.target), self.environment,
                                                      record.stamp), check=False)
        if not out.ok:
            why = deploy_error(out.stdout + out.stderr)
            raise StepError(f"puppet generate types exited {out.exit_code}: {why}",
                            exit_code=out.exit_code, stdout=out.stdout, stderr=out.stderr)

    def _verified(self, ctx: StepContext) -> Deployed:
        """The deployer says it succeeded; which commit it reached is judged across servers."""
        record = read_deployed(ctx, self.environment)
        if record is None or not record.success:
            raise StepError(f"{deployers.of(ctx.target).name} finished but its record for "
                            f"{self.environment} "
                            f"{'is missing' if record is None else 'says the deploy failed'}")
        return record

    def apply(self, ctx: StepContext, found: Finding) -> dict[str, Any] | None:
        """The deploy (when needed) followed by the types' generation; the value is the
        deploy record the server has afterwards."""
        record = found.state
        if self._deploy_needed(record):
            self.change(ctx)
            record = self._verified(ctx)
        self._generate(ctx, record)
        return _plain(record)


def flush_command(ctx: StepContext, environment: str) -> str:
    """curl with the server's own certificate against its own admin API (lab.md's
    flush-envcache.sh); prints the HTTP status."""
    layout, certname = node.layout(ctx.target), node.certname(ctx.target)
    ssl = layout.ssldir
    url = f"https://{certname}:8140{ADMIN_API}?environment={names.environment(environment)}"
    return ("curl -sS -o /dev/null -w '%{http_code}' --max-time 60 -X DELETE "
            f"--cert {shlex.quote(f'{ssl}/certs/{certname}.pem')} "
            f"--key {shlex.quote(f'{ssl}/private_keys/{certname}.pem')} "
            f"--cacert {shlex.quote(f'{ssl}/certs/ca.pem')} {shlex.quote(url)}")


def require_flushed(out: CommandOutput) -> None:
    """Fail unless a ``flush_command`` (its status on stdout) answered 204."""
    status = out.stdout.strip()
    if status != FLUSHED:
        hint = (": auth.conf has no rule letting this server's certificate use the admin API "
                "(bootstrap_ca/add_compiler install it)") if status == "403" else ""
        raise StepError(f"environment-cache DELETE answered {status or 'nothing'} "
                        f"{out.stderr.strip()}{hint}".rstrip(), exit_code=out.exit_code,
                        stdout=out.stdout, stderr=out.stderr)


class EnvironmentCacheFlush(Step):
    """Puppet Server's cache of ``environment`` was flushed after the deploy the server has
    now (DELETE on the admin API, 204 expected). 503 and refused connections while a server
    restarts are retried. ``deployed``: server → the stamp of the deploy this run left there
    (as its deploy step reported it; in noop, the deploy it would make): a flush marked for
    another deploy is to be done.

    Three commands per server: one reading the marker and the deploy record, one flushing
    and (on 204) writing the marker, one checking. The marker names the deploy read before
    the flush, so a deploy that lands during it is flushed again by the next run.
    """

    retry_on_failure = True

    def __init__(self, environment: str, deployed: Mapping[str, str] | None = None):
        super().__init__()
        self.environment = names.environment(environment)
        self.deployed = dict(deployed or {})
        self.name = f"flush {self.environment} cache"

    def _marker(self) -> str:
        return f"{FLUSH_MARKERS}/{self.environment}"

    def _state(self, ctx: StepContext) -> tuple[str, str]:
        """(the deploy the marker says was flushed, the deploy the server has now)."""
        marker, record = read_files(ctx, [self._marker(), record_path(ctx, self.environment)])
        found = deployers.parse_record(record)
        return (marker or "").strip(), found.stamp if found else "never deployed"

    def find(self, ctx: StepContext) -> Finding:
        """What to do, and the deploy the server has now: the one the flush marks."""
        flushed, stamp = self._state(ctx)
        done = flushed == stamp == self.deployed.get(ctx.target.name, stamp)
        return Finding(None if done else f"flush the environment cache of {self.environment}",
                       stamp)

    def check(self, ctx: StepContext) -> str | None:
        flushed, stamp = self._state(ctx)
        return None if flushed == stamp else f"flush the environment cache of {self.environment}"

    def apply(self, ctx: StepContext, found: Finding) -> None:
        self._flush(ctx, found.state)
        self.verify(ctx)

    def _flush(self, ctx: StepContext, stamp: str) -> None:
        marker = shlex.quote(self._marker())
        tmp = shlex.quote(self._marker() + ".puppetops-tmp")
        out = ctx.run(f"s=$({flush_command(ctx, self.environment)}); printf %s \"$s\"; "
                      f"[ \"$s\" = {FLUSHED} ] || exit 0; mkdir -p {FLUSH_MARKERS} && "
                      f"printf '%s\\n' {shlex.quote(stamp)} > {tmp} && chmod 644 {tmp} && "
                      f"mv -f {tmp} {marker}", check=False)
        require_flushed(out)
        if not out.ok:
            raise StepError(f"flushed, but cannot write {self._marker()}: {out.stderr.strip()}",
                            exit_code=out.exit_code, stdout=out.stdout, stderr=out.stderr)
