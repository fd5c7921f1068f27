"""SQLite run inline on the loop (core/db_sqlite.py): writers take turns through the gate, readers never wait."""

import asyncio

import pytest
from sqlalchemy import text

from core.db import make_engine, make_sessionmaker


@pytest.fixture
async def sessions(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path}/gate.db")
    assert engine.dialect.driver == "vigil"
    async with engine.begin() as conn:
        await conn.execute(text("CREATE TABLE counter (id INTEGER PRIMARY KEY, n INTEGER)"))
        await conn.execute(text("INSERT INTO counter VALUES (1, 0)"))
    yield make_sessionmaker(engine)
    await engine.dispose()


async def test_concurrent_read_modify_write_transactions_take_turns(sessions):
    async def bump() -> None:
        async with sessions() as s:
            await s.execute(text("UPDATE counter SET n = n WHERE id = 1"))  # first write: takes the gate
            n = (await s.execute(text("SELECT n FROM counter WHERE id = 1"))).scalar_one()
            await asyncio.sleep(0.001)  # another writer gets the loop here, and must wait for the gate
            await s.execute(text("UPDATE counter SET n = :n WHERE id = 1"), {"n": n + 1})
            await s.commit()

    await asyncio.gather(*[bump() for _ in range(50)])
    async with sessions() as s:
        assert (await s.execute(text("SELECT n FROM counter"))).scalar_one() == 50


async def test_readers_do_not_wait_for_an_open_write(sessions):
    writer = sessions()
    await writer.execute(text("UPDATE counter SET n = 7 WHERE id = 1"))
    async with sessions() as reader:  # WAL: sees the last commit while the write is open
        got = await asyncio.wait_for(reader.execute(text("SELECT n FROM counter")), 1)
        assert got.scalar_one() == 0
    await writer.commit()
    await writer.close()


async def test_a_rolled_back_or_closed_writer_frees_the_gate(sessions):
    s1 = sessions()
    await s1.execute(text("UPDATE counter SET n = 1 WHERE id = 1"))
    await s1.rollback()
    s2 = sessions()
    await s2.execute(text("UPDATE counter SET n = 2 WHERE id = 1"))
    await s2.close()  # closing without commit rolls back and frees the gate
    async with sessions() as s3:
        await asyncio.wait_for(s3.execute(text("UPDATE counter SET n = 3 WHERE id = 1")), 1)
        await s3.commit()
        assert (await s3.execute(text("SELECT n FROM counter"))).scalar_one() == 3
    await s1.close()


async def test_cancelled_writers_never_keep_the_gate(sessions):
    holder = sessions()
    await holder.execute(text("UPDATE counter SET n = 1 WHERE id = 1"))  # holds the gate

    async def write(n: int, linger: float = 0.0) -> None:
        async with sessions() as s:
            await s.execute(text("UPDATE counter SET n = :n WHERE id = 1"), {"n": n})
            await asyncio.sleep(linger)
            await s.commit()

    waiting = [asyncio.create_task(write(2)) for _ in range(5)]
    await asyncio.sleep(0.01)
    for task in waiting[:3]:  # cancelled while queued for the gate
        task.cancel()
    await holder.commit()
    await holder.close()
    await asyncio.gather(*waiting, return_exceptions=True)

    mid = asyncio.create_task(write(3, linger=10))  # cancelled while holding it, mid-transaction
    await asyncio.sleep(0.01)
    mid.cancel()
    await asyncio.gather(mid, return_exceptions=True)

    await asyncio.wait_for(write(4), 1)
    async with sessions() as s:
        assert (await s.execute(text("SELECT n FROM counter"))).scalar_one() == 4


async def test_a_commit_whose_waiter_is_cancelled_finishes_before_the_connection_is_touched(sessions, monkeypatch):
    """The session of a task cancelled mid-commit closes (rolls back) at once; that rollback must wait for the
    commit still running on its thread, or sqlite3 gets two calls on one connection (it crashed, once)."""
    import time

    import core.db_sqlite as inline

    real = inline._COMMITTER

    class SlowCommits:
        def submit(self, fn):
            return real.submit(lambda: (time.sleep(0.2), fn())[1])

    monkeypatch.setattr(inline, "_COMMITTER", SlowCommits())

    async def write() -> None:
        async with sessions() as s:
            await s.execute(text("UPDATE counter SET n = 9 WHERE id = 1"))
            await s.commit()

    task = asyncio.create_task(write())
    await asyncio.sleep(0.05)  # the commit is on its thread now
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    async with sessions() as s:  # the commit went through, and the gate is free again
        await asyncio.wait_for(s.execute(text("UPDATE counter SET n = n + 1 WHERE id = 1")), 1)
        await s.commit()
        assert (await s.execute(text("SELECT n FROM counter"))).scalar_one() == 10
