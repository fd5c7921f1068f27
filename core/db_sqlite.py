"""SQLite for the async engine, run on the event loop itself, with one async write gate per database.

Why not aiosqlite: it runs every call (cursor, execute, fetch, close, commit) on a helper thread and
wakes the loop for each, so a statement cost ~0.4 ms of hops on this 2-core class of machine, several
times the statement itself, and the page, ingest and click paths are dozens of statements each.
SQLite calls are microseconds, so running them inline is cheaper than handing them off; only a write
commit, which waits for its fsync, goes to a thread.

What makes that safe is the gate. SQLite allows one writer at a time; with connections on threads a
second writer sleeps in SQLite's busy handler, but inline that sleep would block the very loop the
first writer needs to reach its COMMIT. So a connection takes this process's write gate (an
asyncio.Lock) before its first write statement and gives it back when its transaction ends; other
writers wait asynchronously, readers never wait (WAL). SQLite's own busy timeout then only matters
against another process, which is why it is short here.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import sqlite3
import weakref
from typing import Any

from sqlalchemy.dialects.sqlite.aiosqlite import (
    AsyncAdapt_aiosqlite_connection,
    AsyncAdapt_aiosqlite_dbapi,
    SQLiteDialect_aiosqlite,
)
from sqlalchemy.util.concurrency import await_

GATE_TIMEOUT = 30.0  # as long as the busy timeout this replaces: a stuck writer fails others, never hangs them
BUSY_TIMEOUT = 5.0  # only another process can make SQLite itself wait now
_READS = ("SELECT", "PRAGMA", "EXPLAIN", "SAVEPOINT", "RELEASE", "ROLLBACK", "COMMIT", "BEGIN")

# Its own threads: the loop's default executor also resolves host names, and a slow DNS server must
# never hold up a commit (and with it the write gate).
_COMMITTER = concurrent.futures.ThreadPoolExecutor(max_workers=4, thread_name_prefix="vigil-sqlite-commit")

# One gate per (event loop, database file): asyncio locks belong to a loop, and tests run many loops.
_GATES: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, asyncio.Lock]] = weakref.WeakKeyDictionary()


def _gate(path: str) -> asyncio.Lock:
    return _GATES.setdefault(asyncio.get_running_loop(), {}).setdefault(path, asyncio.Lock())


def _writes(sql: str) -> bool:
    return not sql.lstrip()[:9].upper().startswith(_READS)


class Connection:
    """The awaitable connection SQLAlchemy's asyncio adapter drives; every call completes at once."""

    def __init__(self, db: sqlite3.Connection, path: str) -> None:
        self._db = db
        self._path = path
        self._holding = False
        self._committing: concurrent.futures.Future[None] | None = None

    @property
    def _connection(self) -> sqlite3.Connection:
        """What SQLAlchemy's aiosqlite adapter checks before commit and rollback."""
        return self._db

    def cursor(self) -> Cursor:
        self._quiesce()
        return Cursor(self)

    def _quiesce(self) -> None:
        """Wait out a commit still running on its thread (its awaiting task was cancelled): sqlite3 must
        never see two calls on one connection at once. Milliseconds, and only after such a cancellation."""
        if self._committing is not None:
            concurrent.futures.wait([self._committing])
            self._committing = None

    async def _before(self, sql: str) -> None:
        self._quiesce()
        if self._holding or not _writes(sql):
            return
        try:
            # asyncio.timeout, not wait_for: wait_for can lose a lock granted just as it times out or is
            # cancelled, and a lost write gate would stall every writer after it.
            async with asyncio.timeout(GATE_TIMEOUT):
                await _gate(self._path).acquire()
        except TimeoutError:
            raise sqlite3.OperationalError("database is locked (another writer held it too long)") from None
        self._holding = True

    def _settle(self, force: bool = False) -> None:
        if self._holding and (force or not self._db.in_transaction):
            self._holding = False
            _gate(self._path).release()

    async def commit(self) -> None:
        self._quiesce()
        if not self._holding:
            try:
                self._db.commit()
            finally:
                self._settle()
            return
        # A write commit waits for its fsync (synchronous=FULL): off the loop, so requests keep being
        # served meanwhile. The gate keeps other connections' writes out; _quiesce keeps this connection's
        # own next call (say, the rollback of a session whose task was cancelled mid-commit) waiting until
        # the commit is over. The gate is freed when the commit has really finished, not when its waiter left.
        self._committing = _COMMITTER.submit(self._db.commit)
        done = asyncio.wrap_future(self._committing)
        done.add_done_callback(lambda _f: self._settle())
        await asyncio.shield(done)
        self._committing = None

    async def rollback(self) -> None:
        self._quiesce()
        try:
            self._db.rollback()
        finally:
            self._settle()

    async def close(self) -> None:
        self._quiesce()
        try:
            self._db.close()
        finally:
            self._settle(force=True)

    async def create_function(self, *args: Any, **kw: Any) -> None:
        self._db.create_function(*args, **kw)

    @property
    def isolation_level(self) -> str | None:
        return self._db.isolation_level


class Cursor:
    def __init__(self, conn: Connection) -> None:
        self._conn = conn
        self._cur = conn._db.cursor()

    async def __aenter__(self) -> Cursor:
        return self

    async def __aexit__(self, *_exc: Any) -> None:
        self._cur.close()

    async def execute(self, sql: str, parameters: Any = ()) -> Cursor:
        await self._conn._before(sql)
        self._cur.execute(sql, parameters)
        return self

    async def executemany(self, sql: str, seq_of_parameters: Any) -> Cursor:
        await self._conn._before(sql)
        self._cur.executemany(sql, seq_of_parameters)
        return self

    async def fetchone(self) -> Any:
        return self._cur.fetchone()

    async def fetchmany(self, size: int | None = None) -> list[Any]:
        return self._cur.fetchmany(size if size is not None else self._cur.arraysize)

    async def fetchall(self) -> list[Any]:
        return self._cur.fetchall()

    async def close(self) -> None:
        self._cur.close()

    @property
    def description(self) -> Any:
        return self._cur.description

    @property
    def rowcount(self) -> int:
        return self._cur.rowcount

    @property
    def lastrowid(self) -> int | None:
        return self._cur.lastrowid

    @property
    def arraysize(self) -> int:
        return self._cur.arraysize

    @arraysize.setter
    def arraysize(self, value: int) -> None:
        self._cur.arraysize = value


async def connect(database: str, **kw: Any) -> Connection:
    kw["timeout"] = min(float(kw.get("timeout", BUSY_TIMEOUT)), BUSY_TIMEOUT)
    kw["check_same_thread"] = False  # the pool may finalize a connection from another thread
    return Connection(sqlite3.connect(database, **kw), database)


class _AdaptedConnection(AsyncAdapt_aiosqlite_connection):
    __slots__ = ()

    @property
    def isolation_level(self) -> str | None:
        return self._connection._db.isolation_level

    @isolation_level.setter
    def isolation_level(self, value: str | None) -> None:
        self._connection._db.isolation_level = value

    def _terminate_force_close(self) -> None:
        self._connection._quiesce()
        self._connection._db.close()
        self._connection._settle(force=True)


class _DBAPI(AsyncAdapt_aiosqlite_dbapi):
    def __init__(self) -> None:
        super().__init__(sqlite3, sqlite3)  # errors and version attributes come from sqlite3 itself

    def connect(self, *arg: Any, **kw: Any) -> _AdaptedConnection:
        kw.pop("async_creator_fn", None)
        return _AdaptedConnection(self, await_(connect(*arg, **kw)))


class SQLiteDialect_inline(SQLiteDialect_aiosqlite):
    """`sqlite+vigil://`: the aiosqlite dialect's SQL, without its thread."""

    driver = "vigil"
    supports_statement_cache = True

    @classmethod
    def import_dbapi(cls) -> _DBAPI:
        return _DBAPI()

    def retrieve_dbapi_version(self, dbapi: Any) -> Any:
        return tuple(int(p) for p in sqlite3.sqlite_version.split("."))


dialect = SQLiteDialect_inline
