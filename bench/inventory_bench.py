"""Resolving a 1,000-target inventory (goal: <= 0.5 s and <= 100 MB), in a fresh process.

The inventory is shaped like a large Puppet estate: nested groups with config, vars and facts
at every level, per-target aliases, vars and config overrides, so merging does real work.
"""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import yaml

from harness import run_measured
from tools import BENCH, REPO

TARGETS = 1000
ROLES = ["web", "db", "cache", "queue", "compiler", "agent", "lb", "search", "batch", "monitor"]


def inventory_data(count: int = TARGETS) -> dict:
    per_role = count // len(ROLES)
    groups = []
    for r, role in enumerate(ROLES):
        targets = [{"name": f"{role}{i:03d}.example.test", "alias": f"{role}{i:03d}",
                    "uri": f"ssh://deploy@10.{r}.{i // 250}.{i % 250 + 1}:22",
                    "vars": {"rack": f"r{i % 12}", "index": i},
                    **({"config": {"ssh": {"connect-timeout": 20}}} if i % 10 == 0 else {})}
                   for i in range(per_role)]
        half = per_role // 2
        groups.append({
            "name": role, "vars": {"role": role, "tier": r % 3}, "facts": {"os": {"family": "Debian"}},
            "config": {"ssh": {"run-as": "root", "command-timeout": 300}},
            "groups": [{"name": f"{role}_a", "targets": targets[:half], "vars": {"zone": "a"}},
                       {"name": f"{role}_b", "targets": targets[half:], "vars": {"zone": "b"}}],
        })
    return {"config": {"transport": "ssh",
                       "ssh": {"user": "deploy", "private-key": "~/.ssh/id_ed25519",
                               "host-key-check": True, "connect-timeout": 10}},
            "vars": {"domain": "example.test"}, "groups": groups}


def run(workdir: Path) -> dict:
    path = workdir / "inventory_1000.yaml"
    path.write_text(yaml.safe_dump(inventory_data(), sort_keys=False))
    sample = run_measured([sys.executable, str(BENCH / "client_inventory.py"), str(path)],
                          env=dict(os.environ, PYTHONPATH=str(REPO)), timeout=120)
    if sample.rc != 0:
        raise RuntimeError(f"inventory bench failed: {sample.tail()}")
    result = json.loads(sample.stdout)
    result["process_wall_s"] = sample.wall
    return result
