"""E-mail integrations end to end (issue 13, item 2): real SMTP (aiosmtplib) against the receiver `vigil serve`
runs, alerts through the same ingest path as the Event API, on SQLite and PostgreSQL."""

from email.message import EmailMessage

import aiosmtplib
import pytest

from tests.conftest import free_port
from tests.kit import Api

DOMAIN = "alerts.vigil.test"
LIMIT = 64 * 1024


@pytest.fixture
async def mail_app(settings, aiohttp_client):  # type: ignore[no-untyped-def]
    from bot.server import create_app

    configured = settings.model_copy(update={"mail_port": free_port(), "mail_host": "127.0.0.1",
                                             "mail_domain": DOMAIN, "mail_max_bytes": LIMIT})
    client = await aiohttp_client(create_app(configured))
    api = Api(client, "test-admin-token-0123456789abcdef")
    api.mail_port = configured.mail_port  # type: ignore[attr-defined]
    return api


def mail(to, subject="[CRITICAL] PROBLEM: disk full on db-1", text="97% used on /var", html=None, **headers):
    msg = EmailMessage()
    msg["From"] = "Zabbix <zabbix@example.com>"
    msg["To"] = to
    msg["Subject"] = subject
    for name, value in headers.items():
        msg[name.replace("_", "-")] = value
    if text is not None:
        msg.set_content(text)
    if html is not None:
        msg.add_alternative(html, subtype="html") if text is not None else msg.set_content(html, subtype="html")
    return msg


async def send(app, msg, to=None):
    return await aiosmtplib.send(msg, hostname="127.0.0.1", port=app.mail_port, recipients=[to or msg["To"]],
                                 start_tls=False, timeout=30)


async def email_integration(app, channel="mail"):
    ch = await app.post("/channels", {"name": channel})
    integ = await app.post(f"/channels/{ch['channel_id']}/integrations", {"type": "email", "name": "monitoring"})
    return ch["channel_id"], integ


async def incidents(app):
    return (await app.get("/incidents?limit=100"))["items"]


async def test_mail_opens_an_incident_and_its_recovery_closes_it(mail_app):
    app = mail_app
    cid, integ = await email_integration(app)
    address = integ["mail_address"]
    assert address == f"{integ['integration_key']}@{DOMAIN}" and integ["push_url"] == f"mailto:{address}"
    listed = await app.get(f"/integrations/{integ['integration_id']}")
    assert listed["push_url"] == "" and "mail_address" not in listed  # the address holds the key: shown once

    errors, reply = await send(app, mail(address))
    assert errors == {} and reply.startswith("2.0.0 OK alert_key mail-")
    [inc] = await incidents(app)
    assert (inc["title"], inc["incident_severity"], inc["progress"], inc["channel_id"]) == (
        "[CRITICAL] PROBLEM: disk full on db-1", "Critical", "Triggered", cid)
    detail = await app.get(f"/incidents/{inc['incident_id']}")
    assert detail["description"] == "97% used on /var"
    assert detail["labels"] == {"from": "zabbix@example.com"}

    await send(app, mail(address, subject="RESOLVED: disk full on db-1", text="back to 40%"))
    [inc] = await incidents(app)
    assert inc["progress"] == "Closed"
    assert (await app.get(f"/integrations/{integ['integration_id']}"))["last_event_at"] > 0


async def test_rules_set_the_dedup_key_and_severity_html_bodies_are_read(mail_app):
    app = mail_app
    _, integ = await email_integration(app)
    rules = await app.call("PUT", f"/integrations/{integ['integration_id']}/mail-rules", {
        "dedup": "header", "dedup_header": "X-Alert-Id",
        "severity_rules": [{"keyword": "P1", "severity": "Critical"}], "default_severity": "Info"})
    assert rules["dedup_header"] == "X-Alert-Id"
    assert (await app.get(f"/integrations/{integ['integration_id']}/mail-rules"))["default_severity"] == "Info"
    address = integ["mail_address"]
    await send(app, mail(address, subject="queue slow", text=None, html="<p>depth <b>900</b></p>",
                         X_Alert_Id="q-1"))
    await send(app, mail(address, subject="P1 queue stuck", text=None, html="<p>depth <b>5000</b></p>",
                         X_Alert_Id="q-1"))
    [inc] = await incidents(app)
    detail = await app.get(f"/incidents/{inc['incident_id']}")
    [alert] = detail["alerts"]
    assert alert["alert_key"] == "q-1"
    assert inc["incident_severity"] == "Critical"  # the second mail raised it: one alert, two events
    assert alert["description"] == "depth 5000"


async def test_unknown_addresses_are_refused_at_rcpt(mail_app):
    app = mail_app
    cid, integ = await email_integration(app)
    standard = await app.post(f"/channels/{cid}/integrations", {"type": "standard", "name": "api"})
    refused = [f"{'0' * 32}@{DOMAIN}", f"{integ['integration_key']}@elsewhere.test", f"postmaster@{DOMAIN}",
               f"{standard['integration_key']}@{DOMAIN}"]
    async with aiosmtplib.SMTP(hostname="127.0.0.1", port=app.mail_port, start_tls=False) as smtp:
        await smtp.ehlo()
        await smtp.mail("zabbix@example.com")
        for address in refused:
            with pytest.raises(aiosmtplib.SMTPRecipientRefused) as info:
                await smtp.rcpt(address)
            assert info.value.code == 550 and "no e-mail integration has this address" in info.value.message
        code, _ = await smtp.rcpt(integ["mail_address"].upper())  # a server may shout; the key still matches
        assert code == 250
    await app.patch(f"/integrations/{integ['integration_id']}", {"status": "disabled"})
    with pytest.raises(aiosmtplib.SMTPRecipientsRefused):
        await send(app, mail(integ["mail_address"]))
    assert await incidents(app) == []


async def test_size_is_announced_and_enforced(mail_app):
    app = mail_app
    _, integ = await email_integration(app)
    async with aiosmtplib.SMTP(hostname="127.0.0.1", port=app.mail_port, start_tls=False) as smtp:
        await smtp.ehlo()
        assert smtp.esmtp_extensions["size"] == str(LIMIT)
        with pytest.raises(aiosmtplib.SMTPSenderRefused) as info:
            await smtp.mail("zabbix@example.com", options=[f"SIZE={LIMIT + 1}"])
        assert info.value.code == 552
    big = mail(integ["mail_address"], text="x" * 70 + ("\n" + "y" * 70) * (LIMIT // 70))
    async with aiosmtplib.SMTP(hostname="127.0.0.1", port=app.mail_port, start_tls=False) as smtp:
        await smtp.mail("zabbix@example.com")  # no SIZE= announced: the cap holds while reading DATA
        await smtp.rcpt(integ["mail_address"])
        with pytest.raises(aiosmtplib.SMTPDataError) as info:
            await smtp.data(big.as_bytes())
        assert info.value.code == 552
    assert await incidents(app) == []


async def test_unreadable_mail_is_refused_with_a_clear_reply(mail_app):
    app = mail_app
    _, integ = await email_integration(app)
    raw = (f"From: a@example.com\r\nTo: {integ['mail_address']}\r\nSubject: x\r\n"
           "Content-Type: text/plain; charset=x-no-such-charset\r\n\r\nbody\r\n").encode()
    with pytest.raises(aiosmtplib.SMTPDataError) as info:
        await aiosmtplib.send(raw, sender="a@example.com", recipients=[integ["mail_address"]],
                              hostname="127.0.0.1", port=app.mail_port, start_tls=False)
    assert info.value.code == 554
    assert "5.6.0 the text/plain part uses an unknown charset 'x-no-such-charset'" in info.value.message
    assert await incidents(app) == []


async def test_a_shared_email_integration_without_a_route_refuses_and_records(mail_app):
    app = mail_app
    db = await app.post("/channels", {"name": "db"})
    integ = await app.post("/integrations", {"type": "email", "name": "shared-mail", "routing": {"cases": [
        {"if": [[{"field": "title", "op": "regex", "values": ["^db"]}]], "channel_id": db["channel_id"]}]}})
    errors, _ = await send(app, mail(integ["mail_address"], subject="db-1 disk full"))
    assert errors == {}
    with pytest.raises(aiosmtplib.SMTPDataError) as info:
        await send(app, mail(integ["mail_address"], subject="web-1 slow"))
    assert info.value.code == 550 and "5.4.4 1 of 1 events went to no channel" in info.value.message
    assert [i["title"] for i in await incidents(app)] == ["db-1 disk full"]
    [item] = (await app.get(f"/integrations/{integ['integration_id']}/unrouted-events"))["items"]
    assert item["title"] == "web-1 slow" and item["labels"] == {"from": "zabbix@example.com"}


async def test_email_integrations_over_the_api(mail_app, app):
    body = await app.call("POST", "/integrations", {"type": "email", "name": "m"}, expect=400)
    assert "VIGIL_MAIL_DOMAIN" in body["error"]["message"]  # `app` receives no mail
    _, integ = await email_integration(mail_app)
    iid = integ["integration_id"]
    body = await mail_app.call("PUT", f"/integrations/{iid}/mail-rules", {"dedup": "subject_regex",
                                                                         "dedup_regex": "(x"}, expect=400)
    assert "dedup_regex" in body["error"]["message"]
    pushed = await mail_app.push(integ["integration_key"], {"event_status": "Critical", "title_rule": "x"},
                                 expect=400)
    assert "e-mail integration" in pushed["error"]["message"]
    rotated = await mail_app.post(f"/integrations/{iid}/rotate-key")
    assert rotated["mail_address"] != integ["mail_address"]
    with pytest.raises(aiosmtplib.SMTPRecipientsRefused):
        await send(mail_app, mail(integ["mail_address"]))  # the old address went with the old key
    errors, _ = await send(mail_app, mail(rotated["mail_address"]))
    assert errors == {}
    cid, _ = await mail_app.channel_with_integration("api")
    standard = (await mail_app.get(f"/channels/{cid}/integrations"))["items"][0]
    await mail_app.call("GET", f"/integrations/{standard['integration_id']}/mail-rules", expect=400)
