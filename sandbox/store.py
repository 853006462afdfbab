"""The demo service's database: orders, idempotency keys and the outbox, in one SQLite file.

Both tracks open the same file, as two versions of a service share one database in production:
an idempotency key taken by stable is taken for the canary too. SQLite's UNIQUE constraint is
what makes "first request wins, every later one conflicts" hold under concurrency, across
processes.
"""

from __future__ import annotations

import sqlite3
import time
from dataclasses import dataclass

_SCHEMA = """
CREATE TABLE IF NOT EXISTS orders (
    id INTEGER PRIMARY KEY,
    idempotency_key TEXT UNIQUE,
    client_key TEXT,
    track TEXT NOT NULL,
    symbol TEXT NOT NULL,
    side TEXT NOT NULL,
    quantity REAL NOT NULL,
    created_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS outbox (
    id INTEGER PRIMARY KEY,
    order_id INTEGER NOT NULL,
    track TEXT NOT NULL,
    created_at REAL NOT NULL,
    published_at REAL
);
CREATE INDEX IF NOT EXISTS outbox_pending ON outbox (track, published_at, id);
"""


class DuplicateKey(Exception):
    """The idempotency key was already used."""


@dataclass(frozen=True)
class Published:
    count: int
    lags: list[float]  # seconds from order to publication, one per published row


def create_database(path: str) -> None:
    """Create the schema in WAL mode, once, before the services open the file: switching the
    journal mode takes an exclusive lock that two processes starting together would fight over."""
    db = sqlite3.connect(path)
    try:
        db.execute("PRAGMA journal_mode=WAL")
        db.executescript(_SCHEMA)
    finally:
        db.close()


class OrderStore:
    """One connection, used from one thread at a time (the caller serialises)."""

    def __init__(self, path: str, track: str):
        self.track = track
        self._db = sqlite3.connect(path, timeout=10.0, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA synchronous=NORMAL")

    def close(self) -> None:
        self._db.close()

    def place(self, symbol: str, side: str, quantity: float, key: str | None, *, enforce_key: bool = True) -> int:
        """Store an order and its outbox row atomically; DuplicateKey if the key is taken.

        With `enforce_key` off (the broken-idempotency fault) the key is kept only as data, so a
        repeated request creates a second order: the bug the drill exists to catch.
        """
        now = time.time()
        unique_key = key if enforce_key else None
        try:
            self._db.execute("BEGIN IMMEDIATE")
            cur = self._db.execute(
                "INSERT INTO orders (idempotency_key, client_key, track, symbol, side, quantity, created_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                (unique_key, key, self.track, symbol, side, quantity, now),
            )
            order_id = cur.lastrowid
            self._db.execute(
                "INSERT INTO outbox (order_id, track, created_at) VALUES (?, ?, ?)", (order_id, self.track, now)
            )
            self._db.execute("COMMIT")
            return order_id
        except sqlite3.IntegrityError:
            self._db.execute("ROLLBACK")
            raise DuplicateKey(key) from None
        except BaseException:
            if self._db.in_transaction:
                self._db.execute("ROLLBACK")
            raise

    def publish_pending(self, limit: int, per_row_delay_s: float = 0.0) -> Published:
        """Publish up to `limit` of this track's pending outbox rows, oldest first."""
        rows = self._db.execute(
            "SELECT id, created_at FROM outbox WHERE track = ? AND published_at IS NULL ORDER BY id LIMIT ?",
            (self.track, limit),
        ).fetchall()
        lags = []
        for row_id, created_at in rows:
            if per_row_delay_s:
                time.sleep(per_row_delay_s)  # a slow database: every write waits
            now = time.time()
            self._db.execute("UPDATE outbox SET published_at = ? WHERE id = ?", (now, row_id))
            lags.append(now - created_at)
        return Published(len(rows), lags)

    def pending_ages(self, limit: int = 1000) -> list[float]:
        now = time.time()
        rows = self._db.execute(
            "SELECT created_at FROM outbox WHERE track = ? AND published_at IS NULL ORDER BY id LIMIT ?",
            (self.track, limit),
        ).fetchall()
        return [now - created for (created,) in rows]

    def prune(self, older_than_s: float) -> None:
        cutoff = time.time() - older_than_s
        self._db.execute("DELETE FROM outbox WHERE track = ? AND published_at < ?", (self.track, cutoff))


def rows_by_track(path: str, keys) -> dict[str, dict[str, int]]:
    """The orders and outbox rows of the orders with these idempotency keys, counted per track
    (read-only: what a shadow order must never have written on the canary's side)."""
    keys = list(keys)
    marks = ",".join("?" * len(keys))
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
        orders = db.execute(f"SELECT track, count(*) FROM orders WHERE idempotency_key IN ({marks}) GROUP BY track",
                            keys).fetchall()
        outbox = db.execute("SELECT outbox.track, count(*) FROM outbox JOIN orders ON orders.id = outbox.order_id "
                            f"WHERE orders.idempotency_key IN ({marks}) GROUP BY outbox.track", keys).fetchall()
    return {"orders": dict(orders), "outbox": dict(outbox)}
