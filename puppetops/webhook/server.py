"""The webhook process: store, queue and app wired together, served by waitress.

waitress is a production WSGI server (pure Python, a thread pool behind an asyncore loop, no
C extension to build) and does not speak TLS: expose the webhook through a TLS-terminating
reverse proxy (nginx, HAProxy) or on a trusted network; the forges' signatures already make
a forged or altered push fail, TLS keeps the payload private.

Request bodies: waitress itself refuses one declared larger than twice ``max_body_bytes``
before reading it and caps chunked ones there; the app answers 413 for anything over
``max_body_bytes`` with a log line. Both bound the memory a client can make us use.
"""
from __future__ import annotations

import logging
import os
import signal
import sqlite3
import sys
import threading
from dataclasses import replace
from typing import Any

import waitress

from ..errors import UsageError, signal_exit_code
from .app import WebhookApp
from .config import WebhookConfig
from .deploy import PlanRunner, Plans, inventory_prefix
from .fleet import FleetWatch, Gather, gather_status
from .log import JsonLog
from .page import Page, mermaid_file
from .queue import DeployQueue
from .store import INTERRUPTED, DeployStore


# waitress warns "Task queue depth is N" whenever requests wait for a thread: under a burst of
# pushes — what the queue's coalescing is for — that is one stderr line per request, which
# costs more than the request and says nothing the /health counts do not
logging.getLogger("waitress.queue").setLevel(logging.ERROR)


def agreed_prefix(config: WebhookConfig) -> WebhookConfig:
    """``config`` with the environment prefix the plans deploy under: r10k's source prefix as
    the inventory gives it for main (var ``r10k_prefix``, what r10k.yaml says on every
    server), so a branch maps to the environment ``deploy_code`` deploys. A ``prefix`` in
    the config that says otherwise is a usage error."""
    found = inventory_prefix(config.inventory or "inventory.yaml", config.main)
    if found is None or found == config.prefix:
        return config
    if config.prefix:
        raise UsageError(f"prefix: {config.prefix!r}, but the inventory's r10k_prefix for "
                         f"{config.main} says {found or 'none'!r}: r10k deploys branches "
                         "there as that; set one of them to the other")
    return replace(config, prefix=found)


class WebhookServer:
    """Everything one webhook process runs. ``plans``: the plan-boundary seam (default: the
    ``deploy_code`` and ``remove_environment`` plans on the config's inventory); ``gather``:
    the status page's (default: the ``status`` plan on the config's inventory)."""

    def __init__(self, config: WebhookConfig, plans: Plans | None = None,
                 gather: Gather | None = None):
        """``UsageError`` (exit 2) when the log, the database or the address cannot be used."""
        self.config = config
        self.stopping = threading.Event()  # serve() returns once it is set
        self.at_once = threading.Event()  # a second signal: stop without waiting for jobs
        try:
            self.log = JsonLog(config.log_file)
        except OSError as exc:
            raise UsageError(f"log_file {config.log_file}: {exc.strerror}") from None
        try:
            self.store = DeployStore(config.database)
        except (OSError, sqlite3.Error) as exc:
            raise UsageError(f"database {config.database}: {getattr(exc, 'strerror', 0) or exc}"
                             ) from None
        failed, queued = self.store.recover()
        for job_id in failed:
            self.log.write(event="deploy", id=job_id, status="failed", error=INTERRUPTED)
        inventory = config.inventory or "inventory.yaml"
        if plans is None:
            config = self.config = agreed_prefix(config)
            plans = PlanRunner(inventory, main=config.main, targets=config.targets,
                               loadbalancers=config.loadbalancers)
        self.queue = DeployQueue(self.store, plans, self.log, workers=config.workers)
        self.fleet = self.page = None
        if config.status_page:
            self.fleet = FleetWatch(gather or (lambda: gather_status(inventory)),
                                    config.status_refresh, self.log)
            self.page = Page(mermaid_file(config.mermaid_js))
        self.app = WebhookApp(config, self.queue, self.store, self.log, self.fleet, self.page)
        try:
            self.http: Any = waitress.create_server(
                self.app, host=config.host, port=config.port, threads=config.threads,
                max_request_body_size=2 * config.max_body_bytes, expose_tracebacks=False,
                ident="puppetops-webhook", clear_untrusted_proxy_headers=True)
        except OSError as exc:
            self.store.close()
            raise UsageError(f"cannot listen on {config.host}:{config.port}: "
                             f"{exc.strerror or exc}") from None
        if queued:  # left by a stop (or a death) before they started: still wanted
            self.log.write(event="resume", ids=[job_id for job_id, _ in queued])
            self.queue.resume(queued)
        if self.fleet:
            self.fleet.start()

    @property
    def port(self) -> int:
        return int(self.http.effective_port)

    def serve(self) -> None:
        """Serve until ``stop()`` (or a signal, through ``run_forever``); then stop accepting,
        close every connection and shut down (``close``).

        The loop is waitress's own, run one poll (at most a second) at a time so that a stop
        asked for from a signal handler is seen there: raising from the handler instead
        (SystemExit, KeyboardInterrupt) can land in a callback whose bare ``except`` eats it.
        """
        self.log.write(event="start", host=self.config.host, port=self.port,
                       signed=self.config.secret is not None, prefix=self.config.prefix,
                       status_page=self.config.status_page)
        adj = self.http.adj
        try:
            while not self.stopping.is_set() and self.http._map:
                self.http.asyncore.loop(timeout=adj.asyncore_loop_timeout, map=self.http._map,
                                        use_poll=adj.asyncore_use_poll, count=1)
        finally:
            self._close_connections()
            self.http.task_dispatcher.shutdown()
            self.close()

    def stop(self) -> None:
        """Ask ``serve`` to return; safe from any thread and from a signal handler: a flag,
        and a byte down the loop's wake-up pipe (no lock taken) so its poll ends now."""
        self.stopping.set()
        try:
            self.http.trigger._physical_pull()
        except OSError:  # the loop has ended already and closed its trigger
            pass

    def _close_connections(self) -> None:
        """The listening socket, every client connection and the loop's trigger closed:
        nothing new is accepted (a client's connect is refused, not left in the backlog)."""
        for channel in list(self.http._map.values()):
            channel.handle_close()

    def close(self) -> bool:
        """Stop: waiting jobs stay queued (the next start runs them), a running one may
        finish within ``stop_grace`` seconds, then it is interrupted at a safe point and
        recorded failed. Until ``at_once`` is set: then the running jobs are recorded failed
        and False is returned — the caller must end the process, whose threads are still in
        them."""
        if self.fleet:
            self.fleet.close()
        active = self.queue.active()
        self.log.write(event="stopping", grace=self.config.stop_grace, **active)
        if active["running"]:
            print(f"puppetops webhook: stopping: {active['running']} deploy(s) running get "
                  f"{self.config.stop_grace:g} s to finish (signal again to stop at once)",
                  file=sys.stderr, flush=True)
        finished = self.queue.close(self.config.stop_grace, self.at_once)
        if not finished:
            self.queue.abandon(STOPPED_AT_ONCE)
        self.log.write(event="stop", at_once=not finished)
        self.store.close()
        self.log.close()
        return finished


STOPPED_AT_ONCE = "the webhook was stopped at once (a second signal) while this job ran"


def run_forever(config: WebhookConfig, plans: Plans | None = None) -> None:
    """The ``puppetops webhook`` process. The first SIGTERM or SIGINT stops it (``close``):
    nothing new accepted, a running job finishes within ``stop_grace`` or is interrupted,
    waiting ones kept for the next start; exit 0. A second one stops it at once: running
    jobs recorded failed, exit 128 + its number."""
    if config.secret is None:
        print(f"warning: allow_unsigned is set: anyone who can reach {config.host}:{config.port} "
              "can trigger deploys", file=sys.stderr)
    server = WebhookServer(config, plans)
    again: list[int] = []

    def second(signum: int, frame: Any) -> None:
        again.append(signum)
        server.at_once.set()

    def first(signum: int, frame: Any) -> None:
        for s in (signal.SIGTERM, signal.SIGINT):
            signal.signal(s, second)
        server.stop()

    for s in (signal.SIGTERM, signal.SIGINT):
        signal.signal(s, first)
    print(f"puppetops webhook listening on {config.host}:{server.port}", file=sys.stderr,
          flush=True)
    server.serve()
    if again:
        sys.stderr.flush()
        os._exit(signal_exit_code(again[0]))  # the threads still in abandoned jobs go with the process
