"""Shift notices end to end through a running Vigil (issue 13 item 10): a member's shift starting and ending
a few seconds after the schedule is saved is told over real SMTP (aiosmtpd), once each; the member's own
setting turns notices off, and only they or an admin change it."""

from __future__ import annotations

from datetime import timedelta

import pytest

from core.clock import utcnow
from tests.kit import Api, until

ADMIN = "test-admin-token-0123456789abcdef"


@pytest.fixture
def app(emailing_app):
    return emailing_app


async def _member(app: Api, name: str) -> tuple[int, str]:
    return await app.member_with_token(name, time_zone="Europe/Berlin", preferences={"Info": ["email"]})


def _layer(member: int, seconds: tuple[float, float]) -> dict:
    now = utcnow()
    return {"start": (now + timedelta(seconds=seconds[0])).isoformat(),
            "end": (now + timedelta(seconds=seconds[1])).isoformat(),
            "members": [{"member_id": member}], "rotation": {"unit": "hours", "value": 1}}


async def test_a_member_is_told_when_their_shift_starts_and_ends(app, inbox):
    box, _ = inbox
    ann, ann_token = await _member(app, "ann")
    _, bob_token = await _member(app, "bob")
    await app.post("/schedules", {"name": "db", "definition": {"layers": [_layer(ann, (1.5, 3))]}})
    await until(lambda: len(box.messages) >= 2)
    start, end = box.messages
    assert all("ann@example.com" in str(m["To"]) for m in (start, end))
    assert start["Subject"].startswith("[On call] Your on-call shift in db starts at ")
    assert "(Europe/Berlin)" in start["Subject"] and "lasts until" in start.get_body(("plain",)).get_content()
    assert end["Subject"].startswith("[On call] Your on-call shift in db ends at ")
    # saving the schedule again rescans it: the boundaries already told are not told again
    [s] = (await app.get("/schedules"))["items"]
    await app.patch(f"/schedules/{s['schedule_id']}", {"description": "x", "definition": s["definition"]})
    await app.settle()
    assert len(box.messages) == 2
    told = (await app.get(f"/shift-notices?member_id={ann}"))["items"]
    assert [(n["kind"], n["medium"], n["state"], n["schedule_id"]) for n in told] == [
        ("end", "email", "sent", s["schedule_id"]), ("start", "email", "sent", s["schedule_id"])]
    # a member reads their own notices only
    assert (await app.get("/shift-notices", token=bob_token))["items"] == []
    assert len((await app.get("/shift-notices", token=ann_token))["items"]) == 2
    await app.call("GET", f"/shift-notices?member_id={ann}", expect=403, token=bob_token)
    assert (await app.get("/shift-notices?state=failed"))["total"] == 0
    # a deleted schedule takes its notices with it
    await app.delete(f"/schedules/{s['schedule_id']}")
    assert (await app.get("/shift-notices"))["total"] == 0


async def test_notices_follow_the_members_setting(app, inbox):
    box, _ = inbox
    ann, ann_token = await _member(app, "ann")
    bob, bob_token = await _member(app, "bob")
    assert await app.get(f"/members/{ann}/shift-notices", token=ann_token) == {
        "member_id": ann, "enabled": True, "lead_minutes": 0, "updated_at": 0}
    off = await app.patch(f"/members/{ann}/shift-notices", {"enabled": False}, token=ann_token)
    assert (off["enabled"], off["lead_minutes"]) == (False, 0)
    body = await app.call("PATCH", f"/members/{ann}/shift-notices", {"lead_minutes": 1441}, expect=400,
                          token=ann_token)
    assert "lead_minutes" in body["error"]["message"]
    await app.call("PATCH", f"/members/{ann}/shift-notices", {"enabled": True}, expect=403, token=bob_token)
    assert (await app.get(f"/members/{ann}/shift-notices"))["enabled"] is False  # an admin reads it

    await app.post("/schedules", {"name": "db", "definition": {"layers": [_layer(ann, (1, 2)), _layer(bob, (1, 2))]}})
    await until(lambda: len(box.messages) >= 2)
    await app.settle()
    assert {m["To"].addresses[0].addr_spec for m in box.messages} == {"bob@example.com"}
