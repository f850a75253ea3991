"""The ``webhook`` task: serve deploy-on-push (puppetops.webhook) until stopped."""
from __future__ import annotations

from dataclasses import replace

from invoke import task

from ..errors import UsageError
from .options import inventory_path, option_help
from .parsing import PuppetopsTask
from .runner import fail, load_inventory


@task(klass=PuppetopsTask, help=dict(
    inventory=option_help("inventory"),
    listen="HOST:PORT to serve on (default 127.0.0.1:8088; :8088 for every address)",
    config="webhook config file (YAML; README 'Deploy on git push' lists the keys)",
    prefix="environment = PREFIX_branch (r10k's source prefix; default: main's r10k_prefix)",
    database="deploy history (SQLite; default ./webhook.sqlite3)",
    log_file="append one JSON line per request and deploy here (default: stderr)",
    allow_unsigned="accept requests without a signature (no secret; anyone who can reach "
                   "the port can deploy)",
    deleted_branches="remove (default): a deleted branch's environment leaves every server; "
                     "keep: it stays",
    stop_grace="at SIGTERM/Ctrl-C, seconds a running deploy may take to finish before it is "
               "interrupted (default 300; a second signal stops at once)"))
def webhook(c, listen=None, inventory=None, config=None, prefix=None, database=None,
            log_file=None, allow_unsigned=False, deleted_branches=None, stop_grace=None):
    """Deploy on git push: serve POST /payload for GitHub, GitLab, Gitea/Forgejo, Bitbucket.

    The secret comes from $PUPPETOPS_WEBHOOK_SECRET or the config's secret_file, never from
    the command line. Each push deploys that branch's environment with deploy_code; a
    deleted branch's environment is removed everywhere (--deleted-branches keep: left).
    """
    from ..webhook import config as settings
    from ..webhook.server import run_forever
    try:
        flags = {"listen": listen, "inventory": inventory, "prefix": prefix, "database": database,
                 "log_file": log_file, "allow_unsigned": True if allow_unsigned else None,
                 "deleted_branches": deleted_branches,
                 "stop_grace": None if stop_grace is None
                 else settings.STOP_GRACE.parse(stop_grace, "--stop-grace")}
        loaded = settings.load(config, flags)
        if loaded.inventory is None:
            loaded = replace(loaded, inventory=inventory_path(None))
        load_inventory(loaded.inventory)  # a broken inventory stops it now, not at the 1st push
        run_forever(loaded)
    except UsageError as exc:
        raise fail(exc) from None
