"""The ``install_webhook`` plan: deploy on git push, served from main, deploying to main and
every compiler from there.

What main gets (all under fixed paths, ``WebhookPaths``): puppetops in a virtualenv of its
own, installed from wheels built on the controller (main needs no index); the webhook's
config and secret; an SSH key of its own, authorized on every server it deploys to (main,
compilers, load balancers), and those servers' host keys as the controller has verified
them (never learned from the network); an inventory of them; the service (systemd unit, or
a supervised daemon where systemd does not run), restarted when its code, config or secret
changed; and, when the control repo lives on main, its post-receive hook.

The service runs as a system user of its own (``USER``), which owns the key, the secret, the
inventory, the deploy history and the log, and nothing else: the process answering the
network needs no root on main. Its deploys reach every server — main itself too — over SSH,
as the inventory's user, with its own key (which is what root on those servers is given).

Every run re-renders the inventory from the controller's: after add_compiler, a re-run is
what makes the webhook deploy to the new compiler too.
"""
from __future__ import annotations

import ipaddress
import shlex
from typing import Any, Iterable

import yaml

from puppetops import mermaid_js, secrets, wheelhouse
from puppetops.errors import StepError, UsageError
from puppetops.inventory.schema import target_setting
from puppetops.flow import changed, single
from puppetops.params import Count, TargetSpec, requires
from puppetops.plan_registry import plan
from puppetops.puppet import names, node
from puppetops.run import Run
from puppetops.step import StepContext
from puppetops.steps import Daemon, FileContent, Packages, Service
from puppetops.steps.code.control_repo import PostReceiveHook
from puppetops.steps.code.provision import repo_on_main
from puppetops.steps.facts import gather
from puppetops.steps.pinned_file import PinnedFile
from puppetops.steps.probe import Probe
from puppetops.steps.python_venv import (STAMP, Virtualenv, WheelsInstalled, WheelsUploaded,
                                         python_version)
from puppetops.steps.secret_file import SecretFile
from puppetops.steps.services import ServiceRestarted
from puppetops.steps.ssh_keys import (AuthorizedKey, SshKeyPair, pinned_known_hosts,
                                      read_public_key)
from puppetops.steps.system_user import OwnedBy, SystemUser
from puppetops.steps.systemd import SystemdUnit
from puppetops.steps.webhook_files import PATHS, WebhookPaths
from puppetops.target import Target

SERVICE = "puppetops-webhook"
PACKAGES = ("python3-venv", "curl", "openssh-client")


# The webhook runs as a user of its own: nothing it does on main needs root there (its deploys
# reach every server, main too, over SSH with its own key, as the inventory's user).
USER = "puppetops-webhook"
DAEMON = Daemon(PATHS.command, PATHS.pidfile, PATHS.output, user=USER)


def inventory_file(text: str) -> FileContent:
    """The webhook's inventory on main holding ``text``, readable by the webhook's user only."""
    return FileContent(PATHS.inventory, text, mode=0o600, owner=f"{USER}:{USER}")


def key_comment(main: Target) -> str:
    return f"puppetops-webhook@{node.certname(main)}"


# -- what main's files say -------------------------------------------------------------------

def config_text(listen: str, prefix: str, status_page: bool = True, status_refresh: int = 10,
                paths: WebhookPaths = PATHS) -> str:
    """The webhook's config.yaml; the secret only by its file's name."""
    values = {"listen": listen, "inventory": paths.inventory, "secret_file": paths.secret,
              "database": paths.database, "log_file": paths.log,
              "main": "main", "targets": "main,compilers", "loadbalancers": "loadbalancers",
              "status_page": status_page, "status_refresh": status_refresh,
              "mermaid_js": paths.mermaid_js}
    if prefix:
        values["prefix"] = prefix
    return "# managed by puppetops install_webhook\n" + yaml.safe_dump(values, sort_keys=False)


def _ssh_settings(target: Target) -> dict[str, Any]:
    """The login settings the webhook needs for ``target``: the same user (and run-as)."""
    config = target.transport_config
    if target.transport != "ssh":
        raise UsageError(f"{target.name}: transport {target.transport}: the webhook reaches "
                         "servers over SSH only")
    if config.get("sudo-password") is not None:
        raise UsageError(f"{target.name}: config.ssh.sudo-password: the webhook cannot read the "
                         "controller's environment; give its user passwordless sudo or log in "
                         "as root")
    out = {"user": target_setting(target, "user")}
    if config.get("run-as"):
        out["run-as"] = config["run-as"]
    return out


def inventory_text(main: Target, compilers: Iterable[Target], lbs: Iterable[Target],
                   paths: WebhookPaths = PATHS) -> str:
    """The webhook's inventory: main, compilers and load balancers as the controller's
    inventory has them (names, addresses, aliases, vars), logging in with main's own key and
    checking host keys against the pinned file."""
    def entry(target: Target) -> dict[str, Any]:
        out: dict[str, Any] = {"name": target.name}
        if target.uri:
            out["uri"] = target.uri
        if target.aliases:
            out["alias"] = list(target.aliases)
        out["config"] = {"ssh": _ssh_settings(target)}
        if target.vars:
            out["vars"] = dict(target.vars)
        return out

    document = {
        "config": {"transport": "ssh",
                   "ssh": {"private-key": paths.key, "known-hosts-file": paths.known_hosts,
                           "host-key-check": True}},
        "groups": [{"name": "main", "targets": [entry(main)]},
                   {"name": "compilers", "targets": [entry(t) for t in compilers]},
                   {"name": "loadbalancers", "targets": [entry(t) for t in lbs]}]}
    return ("# managed by puppetops install_webhook: the servers the webhook deploys to\n"
            + yaml.safe_dump(document, sort_keys=False))


def unit_text(port: int = 8088, paths: WebhookPaths = PATHS) -> str:
    """The systemd unit: the webhook as ``USER``, allowed to bind ``port`` below 1024."""
    bind = ["AmbientCapabilities=CAP_NET_BIND_SERVICE"] if port < 1024 else []
    return "\n".join([
        "# managed by puppetops install_webhook",
        "[Unit]", "Description=puppetops webhook: deploy on git push",
        "After=network-online.target", "Wants=network-online.target", "",
        "[Service]", f"ExecStart={paths.command}", f"User={USER}", f"Group={USER}", *bind,
        "Restart=on-failure", "RestartSec=5",
        # SIGTERM lets a running deploy finish (a half-done r10k run is worse than a late stop)
        "TimeoutStopSec=900", "",
        "[Install]", "WantedBy=multi-user.target", ""])


# -- checks that need the hosts --------------------------------------------------------------

def same_python(ctx: StepContext) -> str:
    """Main's python3 runs the wheels built here: same version and machine."""
    theirs, ours = python_version(ctx), wheelhouse.python_tag()
    if theirs != ours:
        raise StepError(f"main's python3 is {theirs}, the controller's {ours}: the wheels built "
                        "here would not install there; run install_webhook from a controller "
                        "with the same Python version")
    return theirs


def answers(url: str) -> Probe:
    """The webhook answers GET /health (waiting up to 15 s after a start); otherwise the
    failure shows the end of its output."""
    def running(ctx: StepContext) -> bool:
        return ctx.test(DAEMON.running_test()) or \
            ctx.test(f"systemctl is-active --quiet {SERVICE} 2>/dev/null")

    def ask(ctx: StepContext) -> str:
        probe = f"curl -sf --max-time 2 {shlex.quote(url)}"
        out = ctx.run(f"for i in $(seq 60); do {probe} && exit 0; sleep 0.25; done; exit 1",
                      check=False)
        if not out.ok:
            tail = ctx.run(f"tail -n 3 {shlex.quote(PATHS.output)} 2>/dev/null", check=False)
            raise StepError(f"the webhook does not answer {url}: "
                            + (" / ".join(tail.stdout.strip().splitlines()) or "no output"))
        return out.stdout.strip()
    return Probe("webhook answers", f"that it answers {url}", running, ask)


def listen_address(bind: str, port: int) -> str:
    """``HOST:PORT`` for the config (``[IPv6]:PORT``); ``UsageError`` for anything that is
    not an IP address or a host name, or a port outside 1-65535."""
    try:
        literal = ipaddress.ip_address(bind)
    except ValueError:
        if not names.CERTNAME.match(bind):
            raise UsageError(f"bind: expected an IP address or host name, got {bind!r}") from None
        literal = None
    if not 0 < port < 65536:
        raise UsageError(f"port: expected 1 to 65535, got {port}")
    return f"[{bind}]:{port}" if literal is not None and literal.version == 6 else f"{bind}:{port}"


def health_url(bind: str, port: int) -> str:
    """Where the webhook answers on main itself (bound to every address: on loopback)."""
    host = {"0.0.0.0": "127.0.0.1", "::": "::1"}.get(bind, bind)
    return f"http://{f'[{host}]' if ':' in host else host}:{port}/health"


def ship_mermaid(run: Run, host: Target) -> None:
    """mermaid.min.js (pinned) on main for the status page, from the controller's cache —
    fetched there with npm first if missing (this machine's cache, not the infrastructure:
    a noop run fetches too, so it says what the real run will ship). Without it the page
    shows the diagram's text: said, not failed."""
    try:
        source = mermaid_js.ensure()
    except mermaid_js.MermaidJsError as exc:
        run.message(f"install_webhook: the status page will show the fleet's diagram as "
                    f"Mermaid text, not drawn: {exc}")
        return
    run.step(PinnedFile(PATHS.mermaid_js, mermaid_js.SHA256, source.read_bytes), [host])


def _listens(bind: str, port: int) -> None:
    listen_address(bind, port)


@plan(main="targets")
@requires(_listens)
def install_webhook(run: Run, targets: TargetSpec = "main", compilers: TargetSpec = "compilers",
                    loadbalancers: TargetSpec = "loadbalancers", bind: str = "0.0.0.0",
                    port: int = 8088, secret_file: str = "", status_page: bool = True,
                    status_refresh: Count = 10) -> None:
    """Install the webhook on main (deploy on git push), deploying to main and every compiler.

    The webhook on main: puppetops in its own virtualenv (wheels built here, no index
    needed there), config, secret (secret_file: a file only you can read, else one is
    generated on main), an SSH key authorized on main, compilers and load balancers with
    their host keys pinned from this controller's known_hosts, an inventory of them, and
    the service running (restarted when its code, config or secret changed). A control repo
    on main gets a post-receive hook that posts each pushed branch, signed, to it.

    The webhook also serves the fleet's status page on GET / (what `invoke status` says,
    the diagram drawn by Mermaid's renderer shipped from this controller, the recent
    deploys), gathered over its own SSH key while someone looks at it.

    Re-run it after add_compiler: the webhook then deploys to the new compiler too.

    Args:
        compilers: the compilers it deploys to
        bind: the address the webhook listens on, on main (0.0.0.0: every address)
        port: its port
        secret_file: a file only you can read holding the shared secret (default: one is
            generated on main)
        status_page: serve the fleet's status page on GET / (false: only the webhook)
        status_refresh: seconds between the page's refreshes (each one SSH round to the
            servers while the page is open)
    """
    listen = listen_address(bind, port)
    secret = secrets.read_file(secret_file, "secret_file") if secret_file else None
    host = single(run, targets, "install_webhook")
    prefix = node.environment_prefix(host)  # r10k's, so that a branch maps as r10k maps it
    servers, lbs = run.targets(compilers), run.targets(loadbalancers)
    everyone = list(dict.fromkeys([host, *servers, *lbs]))
    inventory, pinned = inventory_text(host, servers, lbs), pinned_known_hosts(everyone)
    wheels = wheelhouse.wheelhouse()

    facts = run.each("facts", gather, [host])[0].value
    systemd = facts.get("init") == "systemd"
    if port < 1024 and not systemd:
        raise UsageError(f"port: {port} is below 1024, which the webhook (running as {USER}) "
                         f"may bind only under systemd; {host.name} has none: choose 1024 or "
                         "above")
    run.each("python", same_python, [host])
    code_steps = [Packages(*PACKAGES), Virtualenv(PATHS.venv), SystemUser(USER, PATHS.home)]
    results = run.pipeline(code_steps, [host])
    upload = WheelsUploaded(PATHS.wheels, wheels.digest, lambda: wheels.ensure_built().files,
                            f"{PATHS.venv}/{STAMP}")
    results += run.pipeline([upload, WheelsInstalled(PATHS.venv, upload.folder,
                                                     wheels.requirements, wheels.digest)],
                            [host])[1:]

    run.step(SshKeyPair(PATHS.key, key_comment(host)), [host])
    public = run.each("webhook public key", read_public_key(PATHS.key), [host])[0].value
    if public:
        run.step(AuthorizedKey(public, key_comment(host)), everyone)
    run.pipeline([FileContent(PATHS.known_hosts, pinned, mode=0o644, owner=f"{USER}:{USER}"),
                  inventory_file(inventory)], [host])
    results += run.pipeline([SecretFile(PATHS.secret, secret),
                             FileContent(PATHS.config, config_text(
                                 listen, prefix, status_page, status_refresh), mode=0o644),
                             OwnedBy(USER, dirs=[PATHS.etc, PATHS.state], files=[PATHS.log])],
                            [host])
    if systemd:
        results.append(run.step(SystemdUnit(SERVICE, unit_text(port)), [host]))
        service = Service(SERVICE)
    else:
        service = Service(SERVICE, daemon=DAEMON)
    started = run.step(service, [host])
    if changed(results) and not changed([started]):
        run.step(ServiceRestarted(SERVICE, daemon=service.daemon), [host])
    run.step(answers(health_url(bind, port)), [host])
    if status_page:
        ship_mermaid(run, host)

    repo = repo_on_main(host)
    if repo is None:
        run.message(f"install_webhook: the control repo is {host.vars['control_repo']}: point "
                    f"its forge's push webhook at http://{node.certname(host)}:{port}/payload "
                    f"with the secret in {PATHS.secret} on {host.name}")
    else:
        run.step(PostReceiveHook(repo, PATHS.hook_command), [host])
