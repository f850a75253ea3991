"""The deploy history: one SQLite file (standard library), so it survives restarts and crashes.

A row is one job for one environment — ``deploy`` (a push) or ``remove`` (a deleted branch) —
and goes queued → running → ok | failed. A process that dies (SIGKILL, power loss) leaves
rows running that nobody will finish; ``recover`` marks them failed at the next start, so a
status is never "running" forever and the history says what happened. Rows still queued
(a stop, or a death, before they started) are still wanted: the next start runs them.

Every write that decides what runs is on disk before the request that caused it is answered:
a new job, a waiting job whose action changes (deploy ↔ remove), a start, an end. A push that
joins a waiting deploy only moves its head and push count; that is kept in memory and written
with the next write or read (one transaction for all of them), so a burst of pushes to one
environment costs one SQLite transaction, not one each. A crash may lose those counts — not
the deploy, which deploys the branch's head when it starts anyway.
"""
from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
from typing import Any

from .log import utc_iso

QUEUED, RUNNING, OK, FAILED = "queued", "running", "ok", "failed"
DEPLOY, REMOVE = "deploy", "remove"
INTERRUPTED = "the webhook stopped before this deploy finished"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS deploys (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    environment TEXT NOT NULL,
    head        TEXT NOT NULL,          -- the commit pushed last before the deploy started
                                        -- ('' for a removal)
    status      TEXT NOT NULL,
    pushes      INTEGER NOT NULL DEFAULT 1,  -- pushes coalesced into this deploy
    provider    TEXT NOT NULL DEFAULT '',
    requested   REAL NOT NULL,
    started     REAL,
    finished    REAL,
    error       TEXT NOT NULL DEFAULT '',
    result      TEXT,                   -- JSON: the plan's per-server results
    action      TEXT NOT NULL DEFAULT 'deploy'  -- or 'remove'
);
CREATE INDEX IF NOT EXISTS deploys_status ON deploys (status);
"""
_COLUMNS = ("id", "environment", "head", "status", "pushes", "provider", "requested", "started",
            "finished", "error", "result", "action")


class DeployStore:
    """Thread-safe access to the deploy table (one connection, one lock: writes are tiny)."""

    def __init__(self, path: str):
        directory = os.path.dirname(os.path.abspath(path))
        os.makedirs(directory, exist_ok=True)
        # results carry servers' output: readable by the owner only, created that way
        os.close(os.open(path, os.O_RDWR | os.O_CREAT, 0o600))
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._lock = threading.Lock()
        self._pending: dict[int, tuple[str, str, int]] = {}  # id → (head, action, pushes more)
        with self._lock:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.executescript(_SCHEMA)
            columns = {row[1] for row in self._db.execute("PRAGMA table_info(deploys)")}
            if "action" not in columns:  # a history from before removals: all deploys
                self._db.execute("ALTER TABLE deploys ADD COLUMN action TEXT NOT NULL "
                                 f"DEFAULT '{DEPLOY}'")

    def recover(self) -> tuple[list[int], list[tuple[int, str]]]:
        """At start: mark the jobs a dead process left running as failed; (their ids, the
        (id, environment) of the jobs left queued, oldest first — to be run now)."""
        with self._lock:
            failed = [row[0] for row in self._db.execute(
                "SELECT id FROM deploys WHERE status = ?", (RUNNING,))]
            self._db.execute("UPDATE deploys SET status = ?, finished = ?, error = ? "
                             "WHERE status = ?", (FAILED, time.time(), INTERRUPTED, RUNNING))
            queued = [(row[0], row[1]) for row in self._db.execute(
                "SELECT id, environment FROM deploys WHERE status = ? ORDER BY id", (QUEUED,))]
        return failed, queued

    def create(self, environment: str, commit: str, provider: str,
               action: str = DEPLOY) -> int:
        with self._lock:
            cursor = self._db.execute(
                "INSERT INTO deploys (environment, head, status, provider, requested, action) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (environment, commit, QUEUED, provider, time.time(), action))
            return int(cursor.lastrowid)

    def coalesce(self, deploy_id: int, commit: str, action: str = DEPLOY,
                 durable: bool = True) -> None:
        """A newer event joins a job that has not started: it now does ``action`` (the latest
        event's), with ``commit`` (the newest head; '' for a removal). ``durable=False``
        (the action is unchanged): written with the next write or read (module docstring)."""
        with self._lock:
            pushes = self._pending.get(deploy_id, ("", "", 0))[2]
            self._pending[deploy_id] = (commit, action, pushes + 1)
            if durable:
                self._write_pending()

    def _write_pending(self) -> None:  # with self._lock held
        if not self._pending:
            return
        self._db.execute("BEGIN")
        self._db.executemany("UPDATE deploys SET head = ?, action = ?, pushes = pushes + ? "
                             "WHERE id = ?", [(head, action, pushes, job_id) for job_id,
                                              (head, action, pushes) in self._pending.items()])
        self._db.execute("COMMIT")
        self._pending.clear()

    def start(self, deploy_id: int) -> tuple[str, str]:
        """Mark the job running; (its action, the commit it deploys)."""
        with self._lock:
            self._write_pending()
            self._db.execute("UPDATE deploys SET status = ?, started = ? WHERE id = ?",
                             (RUNNING, time.time(), deploy_id))
            action, head = self._db.execute("SELECT action, head FROM deploys WHERE id = ?",
                                            (deploy_id,)).fetchone()
            return action, head

    def finish(self, deploy_id: int, ok: bool, result: Any, error: str = "") -> None:
        with self._lock:
            self._write_pending()
            self._db.execute(
                "UPDATE deploys SET status = ?, finished = ?, result = ?, error = ? WHERE id = ?",
                (OK if ok else FAILED, time.time(), json.dumps(result, default=str), error,
                 deploy_id))

    def get(self, deploy_id: int) -> dict[str, Any] | None:
        with self._lock:
            self._write_pending()
            row = self._db.execute(f"SELECT {', '.join(_COLUMNS)} FROM deploys WHERE id = ?",
                                   (deploy_id,)).fetchone()
        return _document(row, with_result=True) if row else None

    def recent(self, limit: int = 50) -> list[dict[str, Any]]:
        """The newest deploys first, without their (long) results."""
        with self._lock:
            self._write_pending()
            rows = self._db.execute(f"SELECT {', '.join(_COLUMNS)} FROM deploys "
                                    "ORDER BY id DESC LIMIT ?", (limit,)).fetchall()
        return [_document(row, with_result=False) for row in rows]

    def counts(self) -> dict[str, int]:
        with self._lock:
            self._write_pending()
            rows = self._db.execute("SELECT status, count(*) FROM deploys GROUP BY status")
            return {status: n for status, n in rows}

    def close(self) -> None:
        with self._lock:
            self._write_pending()
            self._db.close()


def _document(row: tuple, with_result: bool) -> dict[str, Any]:
    data = dict(zip(_COLUMNS, row))
    result = data.pop("result")
    out = {"id": data["id"], "environment": data["environment"], "action": data["action"],
           "commit": data["head"] or None, "status": data["status"], "pushes": data["pushes"], "provider": data["provider"],
           "requested": utc_iso(data["requested"]), "started": utc_iso(data["started"]),
           "finished": utc_iso(data["finished"]), "error": data["error"]}
    if with_result:
        out["result"] = json.loads(result) if result else None
    return out


