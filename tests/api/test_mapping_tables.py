"""Mapping tables through the Open API: rows, CSV import with dry run, export, and the resolver."""

from core.types import Platform
from mapping_tables.store import NotLinked, resolve


async def members(app, *names):
    out = []
    for n in names:
        out.append((await app.post("/members", {"name": n, "email": f"{n}@example.com"}))["member_id"])
    return out


async def test_rows_crud_and_resolver(app):
    from bot.keys import SESSIONS

    [ann] = await members(app, "ann")
    row = await app.post("/mapping-tables/slack/rows", {"member_id": ann, "im_user_id": "U024BE7LH"})
    assert row["id_type"] == "user_id" and row["platform"] == "slack"
    async with app.app[SESSIONS]() as s:
        assert (await resolve(s, Platform.SLACK, "U024BE7LH")).id == ann
        try:
            await resolve(s, Platform.SLACK, "U999")
        except NotLinked as exc:
            assert "not linked" in str(exc) and "mapping table" in str(exc)
        else:
            raise AssertionError("unmapped user resolved")
    tables = {t["platform"]: t for t in (await app.get("/mapping-tables"))["items"]}
    assert tables["slack"]["rows"] == 1 and tables["feishu"]["id_types"] == ["open_id", "user_id", "union_id"]
    await app.delete(f"/mapping-tables/slack/rows/{row['row_id']}")
    assert (await app.get("/mapping-tables/slack/rows"))["total"] == 0


async def test_a_mapped_member_cannot_be_deleted_until_unmapped(app):
    # Found by fuzzing: the refusal used to read the deleted row back and answer 500.
    [ann] = await members(app, "ann")
    await app.post("/mapping-tables/slack/rows", {"member_id": ann, "im_user_id": "U024BE7LH"})
    body = await app.call("DELETE", f"/members/{ann}", expect=409)
    assert f"member {ann} is still referenced" in body["error"]["message"]
    assert (await app.get(f"/members/{ann}"))["member_id"] == ann


async def test_bad_rows_are_refused_with_reasons(app):
    [ann, bob] = await members(app, "ann", "bob")
    body = await app.call("POST", "/mapping-tables/slack/rows", {"member_id": ann, "im_user_id": "alice"}, expect=400)
    assert "not a valid slack user_id" in body["error"]["message"]
    await app.post("/mapping-tables/slack/rows", {"member_id": ann, "im_user_id": "U1AAA"})
    body = await app.call("POST", "/mapping-tables/slack/rows", {"member_id": bob, "im_user_id": "U1AAA"}, expect=409)
    assert "already linked" in body["error"]["message"]
    body = await app.call("POST", "/mapping-tables/irc/rows", {"member_id": ann, "im_user_id": "x"}, expect=404)
    assert "platform" in body["error"]["message"]


CSV = """member,im_user_id,id_type
ann@example.com,ou_aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa,open_id
{bob},ou_bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb,
nobody@example.com,ou_cccccccccccccccccccccccccccccccc,
ann@example.com,not-an-open-id,open_id
{bob},ou_aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa,
"""


async def test_csv_import_dry_run_then_apply_then_export(app):
    [ann, bob] = await members(app, "ann", "bob")
    text = CSV.format(bob=bob)
    headers = {**app.headers(), "Content-Type": "text/csv"}
    resp = await app.client.post("/api/v1/mapping-tables/lark/import", data=text.encode(), headers=headers)
    report = (await resp.json())["data"]
    assert report["dry_run"] is True and report["added"] == 2 and report["changed"] == 0
    reasons = {r["line"]: r["reason"] for r in report["rejected"]}
    assert "unknown member" in reasons[4] and "bad format" in reasons[5] and "duplicate IM id" in reasons[6]
    assert (await app.get("/mapping-tables/feishu/rows"))["total"] == 0  # a dry run writes nothing
    resp = await app.client.post("/api/v1/mapping-tables/feishu/import?dry_run=false", data=text.encode(),
                                 headers=headers)
    assert (await resp.json())["data"]["added"] == 2
    again = await app.client.post("/api/v1/mapping-tables/feishu/import?dry_run=false", data=text.encode(),
                                  headers=headers)
    assert (await again.json())["data"]["unchanged"] == 2
    export = await app.client.get("/api/v1/mapping-tables/feishu/export", headers=app.headers())
    assert export.content_type == "text/csv"
    lines = (await export.text()).strip().splitlines()
    assert lines[0].startswith("member,member_email") and len(lines) == 3
    assert f"{ann},ann@example.com,ann,ou_aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa,open_id," in lines


async def test_csv_without_header_is_refused(app):
    resp = await app.client.post("/api/v1/mapping-tables/slack/import", data=b"1,U1\n",
                                 headers={**app.headers(), "Content-Type": "text/csv"})
    body = await resp.json()
    assert resp.status == 400 and "header" in body["error"]["message"]


async def test_unreadable_csv_is_a_clear_400(app):
    headers = {**app.headers(), "Content-Type": "text/csv"}
    stray_cr = b"member,im_user_id\r\nann\rx,U1\n"  # a bare carriage return inside a line (found by fuzzing)
    resp = await app.client.post("/api/v1/mapping-tables/slack/import", data=stray_cr, headers=headers)
    assert resp.status == 200, await resp.text()
    huge = b"member,im_user_id\n" + b"a" * 200_000 + b",U1\n"  # past the csv module's field limit
    resp = await app.client.post("/api/v1/mapping-tables/slack/import", data=huge, headers=headers)
    body = await resp.json()
    assert resp.status == 400 and "could not be read" in body["error"]["message"]


async def test_auto_match_needs_a_configured_app(app):
    body = await app.call("POST", "/mapping-tables/slack/auto-match", {}, expect=400)
    assert "no slack IM app is configured" in body["error"]["message"]


async def test_auto_match_reports_what_it_could_not_match(app):
    from typing import ClassVar

    from bot.keys import DIRECTORIES

    class Directory:  # a platform directory that knows one address
        platform: ClassVar[Platform] = Platform.SLACK

        async def lookup(self, *, email, phone):
            return ("U0ANN", "user_id") if email == "ann@example.com" else None

    app.app[DIRECTORIES][Platform.SLACK] = Directory()
    [ann, _bob] = await members(app, "ann", "bob")
    await app.post("/members", {"name": "nomail"})
    report = await app.post("/mapping-tables/slack/auto-match")
    assert [m["member_id"] for m in report["matched"]] == [ann]
    reasons = {u["name"]: u["reason"] for u in report["unmatched"]}
    assert "no slack user" in reasons["bob"] and "no email or phone" in reasons["nomail"]
    again = await app.post("/mapping-tables/slack/auto-match")
    assert again["already_linked"] == 1 and again["matched"] == []
