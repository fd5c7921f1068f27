"""The incident page and the incident list, as a signed-in member sees them (no JavaScript involved)."""

from __future__ import annotations

import re

import pytest

from bot.web.incident_list import ListFilter
from tests.web.conftest import Browser, new_incident, new_member


async def _token_of(app, member_id: int) -> str:  # type: ignore[no-untyped-def]
    return (await app.post("/tokens", {"name": f"t{member_id}", "member_id": member_id, "role": "responder"}))["token"]


async def test_incident_page_shows_what_a_responder_needs(app, browser: Browser):
    alice = await new_member(app, "alice")
    iid = await new_incident(app, "checkout <b>errors</b> 5xx")
    await app.post(f"/incidents/{iid}/ack", token=await _token_of(app, alice))
    await app.post(f"/incidents/{iid}/comment", {"comment": "rolling back"}, token=await _token_of(app, alice))
    await browser.sign_in("alice@example.com")
    status, _, body = await browser.get(f"/incidents/{iid}")
    assert status == 200
    assert "checkout &lt;b&gt;errors&lt;/b&gt; 5xx" in body  # alert text is escaped, never markup
    for text in ("Critical", "Processing", "prod", "host</span>db-1", "service</span>orders",
                 "Acknowledged by alice via Open API", "rolling back", "Incident triggered", "acknowledged"):
        assert text in body, text


async def test_unknown_incident_is_a_404_page(app, browser: Browser):
    await new_member(app, "alice")
    await browser.sign_in("alice@example.com")
    status, _, body = await browser.get("/incidents/999999")
    assert status == 404 and "does not exist" in body


async def test_list_filters_and_pages_by_key(app, browser: Browser, monkeypatch):
    from bot.web import incident_list

    monkeypatch.setattr(incident_list, "PAGE_SIZE", 2)
    alice = await new_member(app, "alice")
    ids = [await new_incident(app, f"incident {n}", channel=f"ch{n}") for n in range(5)]
    await app.post(f"/incidents/{ids[1]}/ack", token=await _token_of(app, alice))
    await app.post(f"/incidents/{ids[3]}/close", token=await _token_of(app, alice))
    await browser.sign_in("alice@example.com")

    def shown(body: str) -> list[int]:
        return [int(i) for i in re.findall(r'class="title" href="/incidents/(\d+)"', body)]

    body = (await browser.get("/incidents"))[2]
    assert shown(body) == [ids[4], ids[3]]
    older = re.search(r'href="/incidents\?(before=\d+)">Older', body).group(1)
    body = (await browser.get(f"/incidents?{older}"))[2]
    assert shown(body) == [ids[2], ids[1]] and "Newest" in body
    assert shown((await browser.get("/incidents?scope=mine"))[2]) == [ids[3], ids[1]]
    assert shown((await browser.get("/incidents?progress=Processing"))[2]) == [ids[1]]
    assert shown((await browser.get("/incidents?progress=open&severity=Critical&before=" + str(ids[3])))[2]) \
        == [ids[2], ids[1]]
    assert shown((await browser.get("/incidents?severity=Info"))[2]) == []


@pytest.mark.parametrize("query, expected", [
    ({}, ListFilter()),
    ({"scope": "mine", "progress": "open", "severity": "Warning", "before": "42"},
     ListFilter("mine", "open", "Warning", 42)),
    ({"scope": "everyone", "progress": "Done", "severity": "critical", "before": "-1"}, ListFilter()),
    ({"before": "٤٢"}, ListFilter()),
    ({"before": "9" * 30}, ListFilter()),
])
def test_list_filter_from_query(query, expected):
    assert ListFilter.from_query(query) == expected


def test_list_filter_query_keeps_filters_and_drops_defaults():
    assert ListFilter("mine", "open", "", 9).query(before=5) == "scope=mine&progress=open&before=5"
    assert ListFilter().query() == ""


async def test_home_is_the_list(app, browser: Browser):
    assert (await browser.get("/"))[:2] == (303, "/incidents")
    assert (await browser.get("/incidents"))[:2] == (303, "/login?next=/incidents")
