"""IM app credentials: write-only secrets, encrypted at rest."""

import pytest
from sqlalchemy import select

from core.models import ImApp


@pytest.fixture
async def keyed(settings, aiohttp_client):
    from bot.server import create_app
    from tests.kit import Api

    return Api(await aiohttp_client(create_app(settings.model_copy(update={"secret_key": "k" * 16}))),
               "test-admin-token-0123456789abcdef")


async def test_secrets_are_encrypted_and_never_returned(keyed):
    from bot.keys import SESSIONS

    out = await keyed.post("/im-apps", {"platform": "wecom", "name": "corp", "settings": {"agent_id": "1"},
                                        "secrets": {"corp_secret": "s3cr3t-value"}})
    assert out["secret_keys"] == ["corp_secret"] and "s3cr3t-value" not in str(out)
    async with keyed.app[SESSIONS]() as s:
        row = (await s.execute(select(ImApp))).scalar_one()
    assert "s3cr3t-value" not in row.secrets and row.secrets
    patched = await keyed.patch(f"/im-apps/{out['im_app_id']}", {"secrets": {"token": "t"}})
    assert patched["secret_keys"] == ["corp_secret", "token"]
    listed = await keyed.get("/im-apps")
    assert "s3cr3t-value" not in str(listed)


async def test_without_a_secret_key_secrets_are_refused(app):
    body = await app.call("POST", "/im-apps", {"platform": "slack", "name": "s", "secrets": {"bot_token": "x"}},
                          expect=400)
    assert "VIGIL_SECRET_KEY" in body["error"]["message"]


async def test_non_admin_cannot_read_app_credentials(keyed):
    m = await keyed.post("/members", {"name": "r"})
    tok = (await keyed.post("/tokens", {"name": "t", "member_id": m["member_id"]}))["token"]
    body = await keyed.call("GET", "/im-apps", expect=403, token=tok)
    assert body["error"]["code"] == "AccessDenied"
