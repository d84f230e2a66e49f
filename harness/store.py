"""Embedded SQLite results store, one row per cell, keyed by a hash of everything that determines it.

Each finished cell is committed on its own, so a run that is killed loses nothing it finished and a
re-run computes only the missing cells.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import time
from pathlib import Path
from typing import Any, Iterator, Optional

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
"""

COLUMNS = ("key", "run", "model", "model_plugin", "model_hash", "dataset", "protocol", "attack", "budget", "metric",
           "status", "error", "values_json", "result_json", "config_json", "provenance_json", "seconds", "created_at")


def cell_key(spec: dict[str, Any]) -> str:
    """Stable hash of a cell's defining inputs (model weights hash, data, attack, metric, seed, protocol)."""
    return hashlib.sha256(json.dumps(spec, sort_keys=True, default=str).encode()).hexdigest()


class ResultStore:
    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.conn = sqlite3.connect(str(self.path))
        self.conn.execute("PRAGMA journal_mode=WAL")
        self.conn.executescript(SCHEMA)
        self.conn.commit()

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> "ResultStore":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def get(self, key: str) -> Optional[dict[str, Any]]:
        cur = self.conn.execute(f"SELECT {', '.join(COLUMNS)} FROM results WHERE key = ?", (key,))
        row = cur.fetchone()
        return self._decode(row) if row else None

    def put(self, row: dict[str, Any]) -> None:
        row = dict(row)
        row.setdefault("created_at", time.strftime("%Y-%m-%dT%H:%M:%S"))
        for k in ("values", "result", "config", "provenance"):
            if k in row:
                row[f"{k}_json"] = json.dumps(row.pop(k), default=str)
        vals = [row.get(c) for c in COLUMNS]
        self.conn.execute(f"INSERT OR REPLACE INTO results ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))})", vals)
        self.conn.commit()

    def rows(self, run: str | None = None) -> Iterator[dict[str, Any]]:
        q = f"SELECT {', '.join(COLUMNS)} FROM results"
        args: tuple = ()
        if run is not None:
            q += " WHERE run = ?"
            args = (run,)
        q += " ORDER BY created_at, rowid"
        for row in self.conn.execute(q, args):
            yield self._decode(row)

    @staticmethod
    def _decode(row) -> dict[str, Any]:
        d = dict(zip(COLUMNS, row))
        for k in ("values", "result", "config", "provenance"):
            raw = d.pop(f"{k}_json")
            d[k] = json.loads(raw) if raw else None
        return d
