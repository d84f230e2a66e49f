"""Embedded SQLite results store, one row per cell, keyed by a hash of everything that determines it.

Each finished cell is committed on its own, so a run that is killed loses nothing it finished and a
re-run computes only the missing cells.

Runs that share a store claim a cell before computing it (a row in ``claims`` with an owner and an
expiry), so two concurrent runs never compute the same cell twice. A claim is released when its cell
is stored; one left by a killed process lapses at its expiry, or at once when its owner was a process
on this host that no longer exists.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import socket
import sqlite3
import time
import uuid
from pathlib import Path
from typing import Any, Iterator, Optional

from latentbench.errors import StoreError

SCHEMA = """
CREATE TABLE IF NOT EXISTS results (
    key TEXT PRIMARY KEY,
    run TEXT NOT NULL,
    model TEXT NOT NULL,
    model_plugin TEXT,
    model_hash TEXT NOT NULL,
    dataset TEXT NOT NULL,
    protocol TEXT,
    attack TEXT,
    budget REAL,
    metric TEXT NOT NULL,
    status TEXT NOT NULL,
    error TEXT,
    values_json TEXT,
    result_json TEXT,
    config_json TEXT NOT NULL,
    provenance_json TEXT NOT NULL,
    seconds REAL,
    created_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS claims (
    key TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    expires_at REAL NOT NULL
);
"""
#: how long sqlite waits for another process's write lock before giving up (seconds)
BUSY_TIMEOUT_S = 60.0

COLUMNS = ("key", "run", "model", "model_plugin", "model_hash", "dataset", "protocol", "attack", "budget", "metric",
           "status", "error", "values_json", "result_json", "config_json", "provenance_json", "seconds", "created_at")


def cell_key(spec: dict[str, Any]) -> str:
    """Stable hash of a cell's defining inputs (model weights hash, data, attack, metric, seed, protocol)."""
    return hashlib.sha256(json.dumps(spec, sort_keys=True, default=str).encode()).hexdigest()


def new_owner_id() -> str:
    """``host:pid:random``: unique per runner, and says which process to ask whether it still lives."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:12]}"


def owner_alive(owner: str) -> bool:
    """False only when the owner was a process on this host that has exited; an owner on another
    host (or an id that does not parse) counts as alive until its claim expires."""
    try:
        host, pid, _ = owner.rsplit(":", 2)
        pid_n = int(pid)
    except ValueError:
        return True
    if host != socket.gethostname():
        return True
    try:
        os.kill(pid_n, 0)
    except ProcessLookupError:
        return False
    except OSError:  # e.g. EPERM: the process exists but belongs to another user
        return True
    return True


class ResultStore:
    def __init__(self, path: str | Path):
        self.path = Path(path)
        if self.path.is_dir():
            raise StoreError(f"results store {self.path} is a folder, not an SQLite file -- "
                             f"move it away, or pass the folder that holds results.sqlite")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # autocommit: every statement is its own transaction, except claim()'s explicit one
        with self._sql("open"):
            self.conn = sqlite3.connect(str(self.path), timeout=BUSY_TIMEOUT_S, isolation_level=None)
        try:
            with self._sql("open"):
                self.conn.execute("PRAGMA journal_mode=WAL")
                self.conn.executescript(SCHEMA)
                # a truncated file can still have a readable header and schema: look at every page once
                problem = self.conn.execute("PRAGMA quick_check(1)").fetchone()[0]
                if problem != "ok":
                    raise sqlite3.DatabaseError(problem)
        except StoreError:
            self.conn.close()
            raise

    @contextlib.contextmanager
    def _sql(self, action: str):
        """sqlite errors as one :class:`StoreError` line that names the file and the fix."""
        try:
            yield
        except sqlite3.DatabaseError as e:
            if "locked" in str(e) or "busy" in str(e):
                fix = (f"another process held the store for more than {BUSY_TIMEOUT_S:g} s; "
                       f"wait for it to finish and re-run")
            else:
                fix = ("the file is corrupted, truncated or not an SQLite database: move it away or delete it "
                       "(re-running recomputes the cells it held)")
            raise StoreError(f"cannot {action} the results store {self.path} (sqlite: {e}) -- {fix}") from None

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> "ResultStore":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def get(self, key: str) -> Optional[dict[str, Any]]:
        with self._sql("read"):
            row = self.conn.execute(f"SELECT {', '.join(COLUMNS)} FROM results WHERE key = ?", (key,)).fetchone()
        return self._decode(row) if row else None

    def put(self, row: dict[str, Any]) -> None:
        row = dict(row)
        row.setdefault("created_at", time.strftime("%Y-%m-%dT%H:%M:%S"))
        for k in ("values", "result", "config", "provenance"):
            if k in row:
                row[f"{k}_json"] = json.dumps(row.pop(k), default=str)
        vals = [row.get(c) for c in COLUMNS]
        with self._sql("write"):
            self.conn.execute(f"INSERT OR REPLACE INTO results ({', '.join(COLUMNS)}) "
                              f"VALUES ({', '.join('?' * len(COLUMNS))})", vals)

    # -- claims -------------------------------------------------------------------------------------
    def claim(self, key: str, owner: str, lease_s: float) -> bool:
        """Take the claim on ``key`` for ``owner`` unless another live owner holds an unexpired one.
        The read and the write are one IMMEDIATE transaction, so two runs cannot both take it."""
        now = time.time()
        with self._sql("claim a cell in"):
            self.conn.execute("BEGIN IMMEDIATE")
            try:
                held = self.conn.execute("SELECT owner, expires_at FROM claims WHERE key = ?", (key,)).fetchone()
                if held and held[0] != owner and held[1] > now and owner_alive(held[0]):
                    self.conn.execute("ROLLBACK")
                    return False
                self.conn.execute("INSERT OR REPLACE INTO claims (key, owner, expires_at) VALUES (?, ?, ?)",
                                  (key, owner, now + lease_s))
                self.conn.execute("COMMIT")
            except BaseException:
                if self.conn.in_transaction:
                    self.conn.execute("ROLLBACK")
                raise
        return True

    def release(self, key: str, owner: str) -> None:
        with self._sql("release a claim in"):
            self.conn.execute("DELETE FROM claims WHERE key = ? AND owner = ?", (key, owner))

    def claim_owner(self, key: str) -> Optional[str]:
        with self._sql("read"):
            row = self.conn.execute("SELECT owner FROM claims WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None

    def rows(self, run: str | None = None) -> Iterator[dict[str, Any]]:
        q = f"SELECT {', '.join(COLUMNS)} FROM results"
        args: tuple = ()
        if run is not None:
            q += " WHERE run = ?"
            args = (run,)
        q += " ORDER BY created_at, rowid"
        with self._sql("read"):
            rows = self.conn.execute(q, args).fetchall()
        for row in rows:
            yield self._decode(row)

    @staticmethod
    def _decode(row) -> dict[str, Any]:
        d = dict(zip(COLUMNS, row))
        for k in ("values", "result", "config", "provenance"):
            raw = d.pop(f"{k}_json")
            d[k] = json.loads(raw) if raw else None
        return d
