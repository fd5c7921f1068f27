"""The incident page's escalation state and alert images, as a signed-in member sees them (real SMTP for the
page's delivery, aiosmtpd)."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest
from aiosmtpd.controller import Controller

from bot.keys import SESSIONS
from bot.web.incident_escalation import standing
from core.models import Incident
from tests.conftest import free_port
from tests.kit import Api, until
from tests.web.conftest import Browser, new_incident, new_member


class Inbox:
    def __init__(self) -> None:
        self.rcpt: list[str] = []

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 (aiosmtpd's hook name)
        self.rcpt.extend(envelope.rcpt_tos)
        return "250 OK"


@pytest.fixture
async def mailing_app(settings, aiohttp_client):  # type: ignore[no-untyped-def]
    from bot.server import create_app

    box = Inbox()
    controller = Controller(box, hostname="127.0.0.1", port=free_port())
    controller.start()
    conf = settings.model_copy(update={"email": {"host": "127.0.0.1", "port": controller.port,
                                                 "from_addr": "vigil@example.com", "start_tls": False}})
    yield Api(await aiohttp_client(create_app(conf)), "test-admin-token-0123456789abcdef"), box
    controller.stop()


def _text(body: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", body))


async def test_escalation_state_shows_who_was_paged_how_and_what_is_next(mailing_app):
    app, box = mailing_app
    alice, bob = await new_member(app, "alice"), await new_member(app, "bob")
    cid, key = await app.channel_with_integration()
    await app.post(f"/channels/{cid}/escalation-rules", {"name": "db on-call", "levels": [
        {"targets": {"member_ids": [alice]}, "media": ["email"], "wait_minutes": 30},
        {"targets": {"member_ids": [bob]}, "media": ["email"]}]})
    await app.push(key, {"event_status": "Critical", "title_rule": "db-1 is down", "alert_key": "db-1"})
    [item] = (await app.get("/incidents"))["items"]
    iid = item["incident_id"]
    await until(lambda: "alice@example.com" in box.rcpt)
    await until(lambda: app.get(f"/incidents/{iid}/deliveries"))
    await app.settle()

    browser = Browser(app.client)
    await browser.sign_in("bob@example.com")
    text = _text((await browser.get(f"/incidents/{iid}"))[2])
    assert "State Escalating" in text and "Rule db on-call" in text
    assert "Current level level 1 of 2" in text
    async with app.app[SESSIONS]() as db:
        due = (await db.get(Incident, iid)).escalation_due_at
    assert f"Next level 2 of 2 at {due:%Y-%m-%d %H:%M}" in text, text
    assert re.search(r"alice by E-mail, level 1: Delivered", text), text
    assert "bob by" not in text  # level 2 is not due for half an hour

    await app.post(f"/incidents/{iid}/ack", {"member_id": bob})
    await app.settle()
    text = _text((await browser.get(f"/incidents/{iid}"))[2])
    assert "State Stopped (acknowledged or closed)" in text and "Next level" not in text
    assert "alice by E-mail, level 1: Delivered" in text


async def test_a_page_without_a_rule_says_so(app, browser: Browser):
    await new_member(app, "alice")
    iid = await new_incident(app, "nobody listens")
    await browser.sign_in("alice@example.com")
    text = _text((await browser.get(f"/incidents/{iid}"))[2])
    assert "State No escalation rule applied" in text and "Nobody was paged." in text


async def test_alert_images_only_as_web_urls(app, browser: Browser):
    await new_member(app, "alice")
    _, key = await app.channel_with_integration()
    await app.push(key, {"event_status": "Warning", "title_rule": "latency", "alert_key": "lat", "images": [
        {"alt": "p99 graph", "src": "https://grafana.example.com/render/p99.png",
         "href": "https://grafana.example.com/d/p99"},
        {"alt": "old graph", "src": "http://legacy.example.com/g.png"},
        {"alt": "uploaded", "src": "img_v2_0123456789abcdef"}]})
    iid = (await app.get("/incidents"))["items"][0]["incident_id"]
    await browser.sign_in("alice@example.com")
    body = (await browser.get(f"/incidents/{iid}"))[2]
    assert ('<a href="https://grafana.example.com/d/p99" rel="noopener noreferrer"><img '
            'src="https://grafana.example.com/render/p99.png" alt="p99 graph"') in body
    assert '<a href="http://legacy.example.com/g.png" rel="noopener noreferrer">old graph</a>' in body
    assert 'src="http://' not in body and "img_v2_0123456789abcdef" not in body


def _incident(**kw) -> Incident:  # type: ignore[no-untyped-def]
    return Incident(channel_id=1, title="t", severity="Critical", status="Critical", **kw)


AT = datetime(2026, 5, 1, 8, 30, tzinfo=UTC)
TWO = {"definition": {"levels": [{}, {}]}}


@pytest.mark.parametrize("incident, last, expected", [
    (_incident(escalation_state="running", escalation_level=1, escalation_loop=0, escalation_due_at=AT,
               escalation_snapshot=TWO), (0, 0), ("Escalating", "level 1 of 2", "level 2 of 2", AT)),
    (_incident(escalation_state="running", escalation_level=1, escalation_loop=2, escalation_due_at=AT,
               escalation_snapshot=TWO), (1, 1), ("Escalating", "level 2 of 2, round 2", "level 2 of 2, round 3", AT)),
    (_incident(escalation_state="running", escalation_level=0, escalation_due_at=AT, escalation_snapshot=TWO),
     None, ("Escalating", "none paged yet", "level 1 of 2", AT)),
    (_incident(escalation_state="done", escalation_snapshot=TWO), (1, 0),
     ("Finished: every level was paged", "level 2 of 2", "", None)),
    (_incident(escalation_state="stopped", escalation_snapshot=TWO), (0, 0),
     ("Stopped (acknowledged or closed)", "level 1 of 2", "", None)),
    (_incident(), None, ("No escalation rule applied", "none paged yet", "", None)),
    (_incident(), (-1, 57), ("No escalation rule applied", "assigned", "", None)),
])
def test_standing(incident, last, expected):
    s = standing(incident, last)
    assert (s.state, s.current_level, s.next_level, s.next_at) == expected
