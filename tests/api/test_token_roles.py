"""A token is worth no more than its member is now (issue 11, point 3): its effective role is the lower of
its own role and the member's current role, read on every request."""

from __future__ import annotations

from tests.kit import Api

EVENT = {"event_status": "Critical", "title_rule": "db-1 is down", "alert_key": "db-1"}


async def member(app: Api, name: str, role: str = "responder", **token: str) -> tuple[int, str]:
    m = await app.post("/members", {"name": name, "email": f"{name}@example.com", "role": role})
    tok = await app.post("/tokens", {"name": f"{name}-token", "member_id": m["member_id"], **token})
    return m["member_id"], tok["token"]


async def error(app: Api, method: str, path: str, body=None, *, status: int, token: str | None = None) -> str:
    resp = await app.call(method, path, body, expect=status, token=token)
    return resp["error"]["message"]


async def incident(app: Api) -> int:
    _, key = await app.channel_with_integration()
    await app.push(key, EVENT)
    [inc] = (await app.get("/incidents"))["items"]
    return inc["incident_id"]


async def test_a_demoted_admins_token_loses_admin_power_at_once(app):
    ada, tok = await member(app, "ada", "admin")
    await app.get("/im-apps", token=tok)
    await app.post("/tokens", {"name": "minted-while-admin"}, token=tok)
    await app.patch(f"/members/{ada}", {"role": "responder"})

    before = (await app.get("/tokens"))["total"]
    for method, path, body in (("GET", "/im-apps", None), ("POST", "/tokens", {"name": "escalate-me"}),
                               ("POST", "/tokens", {"name": "x", "member_id": ada, "role": "admin"})):
        message = await error(app, method, path, body, status=403, token=tok)
        assert message == "this token's role (responder (its member's current role)) cannot do this"
    # a responder edits their own member (self-service), but never its role
    message = await error(app, "PATCH", f"/members/{ada}", {"role": "admin"}, status=403, token=tok)
    assert message == "role: a member cannot change their own role; an admin can"
    assert (await app.get("/tokens"))["total"] == before
    assert (await app.get(f"/members/{ada}"))["role"] == "responder"
    iid = await incident(app)  # still worth a responder: it may act
    assert (await app.post(f"/incidents/{iid}/ack", token=tok))["progress"] == "Processing"


async def test_a_member_demoted_to_observer_cannot_act_with_an_old_token(app):
    iid = await incident(app)
    rita, tok = await member(app, "rita")
    await app.patch(f"/members/{rita}", {"role": "observer"})
    message = await error(app, "POST", f"/incidents/{iid}/ack", {}, status=403, token=tok)
    assert "observer" in message
    assert (await app.get(f"/incidents/{iid}", token=tok))["progress"] == "Triggered"


async def test_a_promotion_does_not_widen_a_token_minted_before_it(app):
    rita, tok = await member(app, "rita")
    await app.patch(f"/members/{rita}", {"role": "admin"})
    assert "cannot do this" in await error(app, "GET", "/im-apps", status=403, token=tok)


async def test_a_token_cannot_be_minted_above_its_members_role(app):
    m = await app.post("/members", {"name": "rita", "role": "responder"})
    message = await error(app, "POST", "/tokens", {"name": "t", "member_id": m["member_id"], "role": "admin"},
                          status=400)
    assert message.startswith("role: admin is above the role of member") and "(responder)" in message
    assert (await app.get("/tokens"))["total"] == 0
