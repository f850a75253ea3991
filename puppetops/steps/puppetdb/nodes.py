"""Nodes leaving PuppetDB: everything it holds about a certname deleted (catalogs, facts,
reports), for agents purged from the infrastructure.

On the PuppetDB host itself, over the plain HTTP port the package binds to localhost only
(no certificate needed, nothing leaves the host): ``GET /pdb/query/v4/nodes/<certname>``
answers for a node active or deactivated (404: PuppetDB knows nothing of it), and the admin
command ``delete`` removes its data at once (synchronous, unlike ``deactivate node``, which
only marks it and leaves the data until ``node-purge-ttl``).
"""
from __future__ import annotations

import json
import shlex
from typing import Iterable

from ...errors import StepError
from ...puppet import names, puppetdb
from ...step import Step, StepContext

BASE = f"http://127.0.0.1:{puppetdb.HTTP_PORT}"


def _known(ctx: StepContext, certnames: list[str]) -> list[str]:
    """Those of ``certnames`` PuppetDB holds anything about (active or deactivated)."""
    urls = " ".join(shlex.quote(f"{BASE}/pdb/query/v4/nodes/{n}") for n in certnames)
    out = ctx.run(f"for u in {urls}; do curl -s -o /dev/null -w '%{{http_code}}\\n' "
                  "--max-time 30 \"$u\"; done", check=False)
    codes = out.stdout.split()
    if len(codes) != len(certnames) or any(c not in ("200", "404") for c in codes):
        raise StepError(f"PuppetDB on {ctx.target.name} did not answer {BASE}/pdb/query/v4/"
                        f"nodes: {(out.stderr or out.stdout).strip()[:200]}")
    return [n for n, code in zip(certnames, codes) if code == "200"]


class NodesDeleted(Step):
    """On the PuppetDB host: PuppetDB holds nothing about ``certnames`` any more."""

    name = "PuppetDB nodes deleted"

    def __init__(self, certnames: Iterable[str]):
        super().__init__()
        self.certnames = names.certnames(sorted(set(certnames)))

    def check(self, ctx: StepContext) -> str | None:
        known = _known(ctx, self.certnames)
        return f"delete {', '.join(known)} from PuppetDB" if known else None

    def change(self, ctx: StepContext) -> None:
        for name in _known(ctx, self.certnames):
            body = json.dumps({"command": "delete", "version": 1, "payload": {"certname": name}})
            out = ctx.run(f"curl -s -w '\\n%{{http_code}}' --max-time 60 -X POST -H "
                          f"'Content-Type: application/json' --data {shlex.quote(body)} "
                          f"{shlex.quote(BASE + '/pdb/admin/v1/cmd')}", check=False)
            code = out.stdout.rsplit("\n", 1)[-1].strip()
            if code != "200":
                raise StepError(f"PuppetDB refused to delete {name}: {code} "
                                f"{out.stdout.rsplit(chr(10), 1)[0].strip()[:200]}")
