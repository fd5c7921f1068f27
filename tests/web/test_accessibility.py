"""axe-core in real Chromium over the main pages (sign-in, incident list, incident page, account), in light and
dark colour schemes: no serious or critical violation (issue 12).

The vendored axe-core (tests/web/vendor/, pinned, MPL-2.0) is evaluated in the page through the DevTools
protocol, so the pages keep their Content-Security-Policy (no inline script) while they are checked. The same run
saves the incident list and a worked incident page at phone and desktop width under test-artifacts/web/."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.web.conftest import new_incident, new_member
from tests.web.test_pages_browser import ARTIFACTS, DESKTOP, PHONE, _base, _sign_in, chromium  # noqa: F401

AXE = (Path(__file__).parent / "vendor" / "axe.min.js").read_text()
BLOCKING = ("serious", "critical")

# The violations, each with the first few offending elements and why, for a readable failure; and the rules
# that passed, which show the page was really checked (a script that failed to load would report nothing).
RUN = """async () => {
  const r = await axe.run(document, {resultTypes: ["violations"]});
  return {passes: r.passes.map(v => v.id), violations: r.violations.map(v => ({id: v.id, impact: v.impact,
    help: v.help, nodes: v.nodes.slice(0, 3).map(n => n.target.join(" ") + " -> " + n.failureSummary)}))};
}"""


async def violations(page) -> list[dict[str, Any]]:  # type: ignore[no-untyped-def]
    """Serious and critical axe violations of the page as it is now."""
    await page.evaluate(AXE)
    result = await page.evaluate(RUN)
    assert {"color-contrast", "document-title", "landmark-one-main"} <= set(result["passes"]) | {
        v["id"] for v in result["violations"]}, page.url
    return [v for v in result["violations"] if v["impact"] in BLOCKING]


async def worked_incident(app, member_id: int) -> int:  # type: ignore[no-untyped-def]
    """An incident with what a responder sees mid-incident: labels, an acknowledgement, a comment."""
    iid = await new_incident(app, "payments API 5xx above 2%")
    await app.post(f"/incidents/{iid}/ack", {"member_id": member_id})
    await app.post(f"/incidents/{iid}/comment", {"member_id": member_id,
                                                 "comment": "Rolling back deploy 2041, error rate falling."})
    return iid


async def test_main_pages_have_no_serious_accessibility_violation(app, chromium, db_url):  # noqa: F811
    if "sqlite" not in db_url:
        pytest.skip("the markup does not depend on the database: checked once, on SQLite")
    alice = await new_member(app, "alice")
    _, key = await app.channel_with_integration(name="storage")
    for severity, title in (("Info", "backup job took 2h10m"), ("Warning", "disk 91% full on db-2"),
                            ("Critical", "disk 97% full on db-1")):  # a list with more than one row to look at
        await app.push(key, {"event_status": severity, "title_rule": title, "alert_key": title,
                             "labels": {"host": title.rsplit(" ", 1)[-1]}})
    iid = await worked_incident(app, alice)
    base = _base(app)
    found: dict[str, list[dict[str, Any]]] = {}
    for scheme in ("light", "dark"):
        page = await (await chromium.new_context(viewport=PHONE, color_scheme=scheme)).new_page()
        await page.goto(f"{base}/login")
        found[f"sign-in ({scheme})"] = await violations(page)
        await _sign_in(page, "alice@example.com")
        await page.wait_for_url(f"{base}/incidents")  # home is the list
        for name, path in (("incident list", "/incidents"), ("incident page", f"/incidents/{iid}"),
                           ("account", "/account")):
            await page.goto(base + path)
            found[f"{name} ({scheme})"] = await violations(page)
            if scheme == "light" and name != "account":
                await _screenshots(page, name.replace(" ", "-"))
    assert len(found) == 8
    assert {k: v for k, v in found.items() if v} == {}


async def _screenshots(page, name: str) -> None:  # type: ignore[no-untyped-def]
    """Viewport-sized shots (not full page): what a reviewer sees first, small enough for the README."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    for label, size in (("phone", PHONE), ("desktop", DESKTOP)):
        await page.set_viewport_size(size)
        await page.screenshot(path=str(ARTIFACTS / f"a11y-{name}-{label}.png"))
    await page.set_viewport_size(PHONE)
