"""core.images.of_incidents on both databases: the images of a batch of incidents in one read, newest alert
first, only from the newest alerts."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import event

from core import images
from core.db import make_engine, make_sessionmaker
from core.models import Alert, Channel, Incident, Integration

T0 = datetime(2026, 6, 1, 3, 0, tzinfo=UTC)


def _img(name: str, scheme: str = "https") -> dict[str, str]:
    return {"src": f"{scheme}://img.example.com/{name}.png", "alt": name, "href": ""}


async def test_images_of_a_batch_of_incidents_in_one_read(db_url):
    engine = make_engine(db_url)
    sessions = make_sessionmaker(engine)
    async with sessions() as s:
        ch = Channel(name="prod")
        s.add(ch)
        await s.flush()
        integ = Integration(name="i", type="standard", channel_id=ch.id, key="k", key_hash="h")
        one, two, bare = (Incident(channel_id=ch.id, title=t, severity="Critical", status="Critical")
                          for t in ("one", "two", "bare"))
        s.add_all([integ, one, two, bare])
        await s.flush()

        def alert(incident: Incident, key: str, imgs: list[dict[str, str]]) -> Alert:
            return Alert(channel_id=ch.id, integration_id=integ.id, incident_id=incident.id, alert_key=key,
                         title=key, severity="Critical", status="Critical", images=imgs)

        s.add(alert(one, "old", [_img("old-a"), _img("old-b")]))
        await s.flush()
        s.add(alert(one, "new", [_img("plain", "http"), _img("new-a")]))
        await s.flush()
        s.add(alert(two, "first", [_img("early")]))
        await s.flush()
        # more newer alerts than are searched: the early image is not read again for every card
        for i in range(images.SCAN_ALERTS):
            s.add(alert(two, f"k{i}", []))
        s.add(alert(bare, "none", []))
        await s.commit()
        ids = (one.id, two.id, bare.id)

    statements: list[str] = []
    event.listen(engine.sync_engine, "before_cursor_execute", lambda *a: statements.append(a[2]))
    async with sessions() as s:
        got = await images.of_incidents(s, [*ids, 10**6])
    assert len(statements) == 1
    assert got[ids[0]] == [_img("new-a"), _img("old-a"), _img("old-b")]
    assert got[ids[1]] == [] and got[ids[2]] == [] and got[10**6] == []
    async with sessions() as s:
        assert (await images.of_incidents(s, [ids[0]], limit=1)) == {ids[0]: [_img("new-a")]}
        assert await images.of_incidents(s, []) == {}
        statements.clear()
        many = await images.of_incidents(s, [ids[0], *range(10**6, 10**6 + images.CHUNK)])
    assert len(statements) == 2 and len(many) == images.CHUNK + 1  # SQLite takes 500 terms in a compound SELECT
    assert many[ids[0]] == [_img("new-a"), _img("old-a"), _img("old-b")]
    await engine.dispose()
