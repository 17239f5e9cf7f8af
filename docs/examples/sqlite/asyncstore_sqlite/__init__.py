"""An asyncstore backend that keeps objects in one SQLite database file."""

from __future__ import annotations

import sqlite3

from asyncstore.kv import BlockingKeyValueModule, Expected


class SQLiteModule(BlockingKeyValueModule):
    """Keeps objects in a SQLite database file, one row per object.

    Args:
        path: The database file, created if missing (``:memory:`` for a private one).
        timeout: How many seconds to wait for another process's write lock.
    """

    name = "sqlite"
    url_path = "path"  # sqlite:///srv/blobs.db means path="/srv/blobs.db"

    def __init__(self, *, path: str, timeout: float = 5.0) -> None:
        self.path = path
        self.timeout = timeout

    def _open(self) -> None:
        # Hooks run in worker threads, one at a time: the connection may move between them.
        self._db = sqlite3.connect(
            self.path, timeout=self.timeout, isolation_level=None, check_same_thread=False
        )
        # WAL: readers never wait for the writer. NORMAL: a commit does not wait for the disk
        # (a power cut may undo the last ones, never corrupt the file).
        self._db.executescript(
            "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"
            " CREATE TABLE IF NOT EXISTS objects"
            " (key TEXT PRIMARY KEY, record TEXT NOT NULL, value BLOB NOT NULL)"
        )

    def _close(self) -> None:
        self._db.close()

    def _get(self, key: str, start: int, end: int) -> tuple[str, bytes] | None:
        row = self._db.execute(
            "SELECT record, substr(value, ? + 1, ?) FROM objects WHERE key = ?",
            (start, end - start, key),
        ).fetchone()
        return None if row is None else (row[0], row[1])

    def _set(self, key: str, value: bytes, record: str, expected: Expected | None = None) -> bool:
        with self._db:  # one transaction: the check and the write are atomic
            self._db.execute("BEGIN IMMEDIATE")
            if expected and self._record(key) != expected.record:
                return False
            self._db.execute("REPLACE INTO objects VALUES (?, ?, ?)", (key, record, value))
        return True

    def _delete(self, key: str, expected: Expected | None = None) -> bool:
        with self._db:
            self._db.execute("BEGIN IMMEDIATE")
            if expected and self._record(key) != expected.record:
                return False
            self._db.execute("DELETE FROM objects WHERE key = ?", (key,))
        return True

    def _scan(self, prefix: str) -> list[tuple[str, str]]:
        # TEXT compares as UTF-8 bytes, which is code-point order.
        return self._db.execute(
            "SELECT key, record FROM objects WHERE substr(key, 1, length(?1)) = ?1 ORDER BY key",
            (prefix,),
        ).fetchall()

    def _record(self, key: str) -> str | None:
        row = self._db.execute("SELECT record FROM objects WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])
