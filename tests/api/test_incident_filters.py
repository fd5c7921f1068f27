"""GET /api/v1/incidents filters: start time, labels, team, responder, mine and title words, paged in SQL."""

import time

import pytest

from core.errors import InvalidInput
from core.incident_filters import like_pattern, parse_labels


@pytest.mark.parametrize("csv, labels", [
    ("service=payments", {"service": "payments"}),
    (" service = payments , env=prod", {"service": "payments", "env": "prod"}),
    ("k8s.pod=api-1", {"k8s.pod": "api-1"}),
    ("empty=", {"empty": ""}),
    ("a=b=c", {"a": "b=c"}),
])
def test_parse_labels(csv, labels):
    assert parse_labels(csv) == labels


@pytest.mark.parametrize("csv, words", [
    ("service", "is not name=value"), ("=x", "is not name=value"), ("a=1,a=2", "named twice"),
    ('a"b=1', "quote"), (",".join(f"k{i}=v" for i in range(11)), "at most 10"),
])
def test_parse_labels_refuses(csv, words):
    with pytest.raises(InvalidInput, match=words):
        parse_labels(csv)


@pytest.mark.parametrize("words, pattern", [("disk", "%disk%"), ("100%", "%100\\%%"), ("a_b", "%a\\_b%")])
def test_like_pattern_escapes_wildcards(words, pattern):
    assert like_pattern(words) == pattern


async def ids(app, query="", token=None):
    page = await app.get(f"/incidents?limit=100{query}", token=token)
    return sorted(i["incident_id"] for i in page["items"])


async def test_filters_over_http(app):
    ann = await app.post("/members", {"name": "ann"})
    bob = await app.post("/members", {"name": "bob"})
    ann_id, bob_id = ann["member_id"], bob["member_id"]
    ann_token = (await app.post("/tokens", {"name": "ann", "member_id": ann_id}))["token"]
    team = (await app.post("/teams", {"name": "payments", "member_ids": [bob_id]}))["team_id"]
    _, key = await app.channel_with_integration("payments", team_ids=[team])
    ops, ops_key = await app.channel_with_integration("ops")
    await app.push(key, {"event_status": "Critical", "title_rule": "Refunds stuck", "alert_key": "r",
                         "labels": {"service": "payments", "env": "prod"}})
    await app.push(ops_key, {"event_status": "Warning", "title_rule": "disk 100% on db-1", "alert_key": "d",
                             "labels": {"service": "db", "env": "prod"}})
    before = int(time.time())
    manual = (await app.call("POST", "/incidents", {"title": "Checkout slow", "incident_severity": "Info",
                                                    "channel_id": ops, "responder_ids": [bob_id]},
                             expect=201))["data"]["incident_id"]
    await app.settle()
    by_title = {i["title"]: i["incident_id"] for i in (await app.get("/incidents"))["items"]}
    refunds, disk = by_title["Refunds stuck"], by_title["disk 100% on db-1"]
    await app.post(f"/incidents/{disk}/comment", {"comment": "on it", "member_id": ann_id})

    assert await ids(app, "&labels=service=payments") == [refunds]
    assert await ids(app, "&labels=env=prod,service=db") == [disk]
    assert await ids(app, "&labels=env=prod") == [refunds, disk]
    assert await ids(app, "&labels=env=staging") == []
    assert await ids(app, f"&team_ids={team}") == [refunds]
    assert await ids(app, f"&responder_ids={bob_id}") == [manual]
    assert await ids(app, "&mine=true", token=ann_token) == [disk]  # she acted on it
    assert await ids(app, "&query=CHECKOUT") == [manual]
    assert await ids(app, "&query=100%25") == [disk]  # a literal %, not a wildcard
    assert await ids(app, "&query=1_0") == []
    assert await ids(app, f"&start_time={before + 3600}") == []
    assert await ids(app, f"&end_time={before - 3600}") == []
    assert await ids(app, f"&start_time={before - 3600}&end_time={before + 3600}") == [refunds, disk, manual]
    page = await app.get("/incidents?limit=1&p=2&labels=env=prod")
    assert page["total"] == 2 and [i["incident_id"] for i in page["items"]] == [refunds]  # newest first

    for query, words in [("&mine=true", "use a member's token"), ("&labels=env", "not name=value"),
                         ("&team_ids=a", "team_ids"), (f"&start_time={before}&end_time={before}", "after")]:
        err = await app.call("GET", f"/incidents?{query}", expect=400)
        assert words in err["error"]["message"], query
