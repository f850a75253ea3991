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

import signal
import sqlite3
import sys
from typing import Any

import waitress

from ..errors import UsageError
from .app import WebhookApp
from .config import WebhookConfig
from .deploy import DeployFunction, PlanRunner, RemoveFunction
from .log import JsonLog
from .queue import DeployQueue
from .store import INTERRUPTED, DeployStore


class WebhookServer:
    """Everything one webhook process runs. ``deploy`` and ``remove``: the plan-boundary seam
    (default: the ``deploy_code`` and ``remove_environment`` plans on the config's inventory;
    whoever stubs one stubs both, so a test never reaches real hosts by accident)."""

    def __init__(self, config: WebhookConfig, deploy: DeployFunction | None = None,
                 remove: RemoveFunction | None = None):
        """``UsageError`` (exit 2) when the log, the database or the address cannot be used."""
        if (deploy is None) != (remove is None):
            raise TypeError("pass both deploy and remove, or neither")
        self.config = config
        try:
            self.log = JsonLog(config.log_file)
        except OSError as exc:
            raise UsageError(f"log_file {config.log_file}: {exc.strerror}") from None
        try:
            self.store = DeployStore(config.database)
        except (OSError, sqlite3.Error) as exc:
            raise UsageError(f"database {config.database}: {getattr(exc, 'strerror', 0) or exc}"
                             ) from None
        for deploy_id in self.store.recover():
            self.log.write(event="deploy", id=deploy_id, status="failed", error=INTERRUPTED)
        if deploy is None or remove is None:
            plans = PlanRunner(config.inventory or "inventory.yaml", main=config.main,
                               targets=config.targets, loadbalancers=config.loadbalancers,
                               prefix=config.prefix)
            deploy, remove = plans.deploy, plans.remove
        self.queue = DeployQueue(self.store, deploy, remove, self.log, workers=config.workers)
        self.app = WebhookApp(config, self.queue, self.store, self.log)
        try:
            self.http: Any = waitress.create_server(
                self.app, host=config.host, port=config.port, threads=config.threads,
                max_request_body_size=2 * config.max_body_bytes, expose_tracebacks=False,
                ident="puppetops-webhook", clear_untrusted_proxy_headers=True)
        except OSError as exc:
            self.store.close()
            raise UsageError(f"cannot listen on {config.host}:{config.port}: "
                             f"{exc.strerror or exc}") from None

    @property
    def port(self) -> int:
        return int(self.http.effective_port)

    def serve(self) -> None:
        """Serve until SIGTERM/SIGINT (main thread) or ``stop()``; then shut down cleanly."""
        self.log.write(event="start", host=self.config.host, port=self.port,
                       signed=self.config.secret is not None, prefix=self.config.prefix)
        try:
            self.http.run()  # returns on SystemExit / KeyboardInterrupt, or once stopped
        finally:
            self.http.task_dispatcher.shutdown()
            self.close()

    def stop(self) -> None:
        """From another thread: have waitress's loop close the listener and every connection
        itself (through its trigger), which ends the loop, so ``serve`` returns."""
        def close_all() -> None:
            for channel in list(self.http._map.values()):
                channel.handle_close()
        try:
            self.http.trigger.pull_trigger(close_all)
        except OSError:  # the loop has ended already and closed its trigger: nothing to stop
            pass

    def close(self) -> None:
        """Wait for running deploys, fail the waiting ones, close the store and log."""
        self.queue.close()
        self.log.write(event="stop")
        self.store.close()
        self.log.close()


def run_forever(config: WebhookConfig, deploy: DeployFunction | None = None,
                remove: RemoveFunction | None = None) -> None:
    """The ``puppetops webhook`` process: SIGTERM ends it like Ctrl-C (no new requests,
    running deploys finish)."""
    if config.secret is None:
        print(f"warning: allow_unsigned is set: anyone who can reach {config.host}:{config.port} "
              "can trigger deploys", file=sys.stderr)
    server = WebhookServer(config, deploy, remove)

    def terminate(signum: int, frame: Any) -> None:
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, terminate)
    print(f"puppetops webhook listening on {config.host}:{server.port}", file=sys.stderr,
          flush=True)
    server.serve()
