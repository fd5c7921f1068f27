"""The incident page's custom fields (issue 13 item 8): the values are shown, a member who may act sets
them with the page's forms (CSRF token, then back to the page) through core.custom_fields.set_value, and
the timeline says it came from the web; an observer sees the values without the forms."""

from __future__ import annotations

import html
import re

from tests.web.conftest import Browser, new_incident, new_member


def _flash(body: str) -> str:
    found = re.search(r'<p class="(?:notice|error)" role="(?:status|alert)">([^<]*)</p>', body)
    return html.unescape(found.group(1)) if found else ""


async def _set(browser: Browser, iid: int, field_id: int, data: list[tuple[str, str]]) -> str:
    csrf = await browser.csrf(f"/incidents/{iid}")
    resp = await browser.client.post(f"/incidents/{iid}/fields/{field_id}", data=[("csrf", csrf), *data],
                                     allow_redirects=False)
    assert (resp.status, resp.headers.get("Location")) == (303, f"/incidents/{iid}")
    status, _, body = await browser.get(f"/incidents/{iid}")
    assert status == 200
    return _flash(body)


async def test_fields_are_shown_and_set_from_the_page(app, browser: Browser):
    await new_member(app, "alice")
    await new_member(app, "olive", role="observer")
    impact = await app.post("/custom-fields", {"name": "impact", "display_name": "Impact", "type": "single_select",
                                               "options": ["High", "Low"], "default_value": "Low"})
    systems = await app.post("/custom-fields", {"name": "systems", "display_name": "Systems", "type": "multi_select",
                                                "options": ["db", "api", "web"]})
    customer = await app.post("/custom-fields", {"name": "customer", "display_name": "Customer facing",
                                                 "type": "checkbox"})
    note = await app.post("/custom-fields", {"name": "note", "display_name": "Note", "type": "text"})
    iid = await new_incident(app)

    await browser.sign_in("alice@example.com")
    _, _, body = await browser.get(f"/incidents/{iid}")
    assert f'action="/incidents/{iid}/fields/{impact["field_id"]}"' in body
    assert '<option value="Low" selected>Low</option>' in body

    assert await _set(browser, iid, impact["field_id"], [("value", "High")]) == "Impact is now High."
    assert await _set(browser, iid, systems["field_id"], [("value", "web"), ("value", "db")]) == \
        "Systems is now db, web."
    assert await _set(browser, iid, customer["field_id"], [("value", "yes")]) == "Customer facing is now Yes."
    assert await _set(browser, iid, note["field_id"], [("value", " <b>rollback</b> ")]) == \
        "Note is now <b>rollback</b>."
    assert (await _set(browser, iid, impact["field_id"], [("value", "Huge")])).startswith(
        "Nothing changed: value: 'Huge' is not an option of impact")
    assert await _set(browser, iid, customer["field_id"], []) == "Customer facing is now No."
    incident = await app.get(f"/incidents/{iid}")
    assert incident["fields"] == {"impact": "High", "systems": ["db", "web"], "customer": False,
                                  "note": "<b>rollback</b>"}
    web = [(t["detail"]["field"], t["detail"]["to"]) for t in incident["timeline"]
           if t["kind"] == "i_r_field" and t["source"] == "web" and t["actor_id"] is not None]
    assert web == [("impact", "High"), ("systems", ["db", "web"]), ("customer", True), ("note", "<b>rollback</b>"),
                   ("customer", False)]
    _, _, body = await browser.get(f"/incidents/{iid}")
    assert "&lt;b&gt;rollback&lt;/b&gt;" in body and "<b>rollback</b>" not in body
    assert "Custom field Impact set to High by alice via the web" in body

    # an observer reads the values but gets no form, and a forged post changes nothing
    browser.forget()
    await browser.sign_in("olive@example.com")
    _, _, body = await browser.get(f"/incidents/{iid}")
    assert "<dt>Impact</dt><dd>High</dd>" in body and f"/fields/{impact['field_id']}" not in body
    message = await _set(browser, iid, impact["field_id"], [("value", "Low")])
    assert message.startswith("Nothing changed:") and "observer" in message
    assert (await app.get(f"/incidents/{iid}"))["fields"]["impact"] == "High"
