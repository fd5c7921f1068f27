"""Fuzz the ingest endpoints: any JSON gets 200 or a documented 4xx envelope, never a 5xx."""

import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda children: st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=20), children, max_size=5),
    max_leaves=20,
)
standardish = st.fixed_dictionaries(
    {"event_status": st.sampled_from(["Critical", "Warning", "Info", "Ok", "bad", 3]),
     "title_rule": st.text(max_size=600) | st.integers()},
    optional={"alert_key": st.text(max_size=300), "labels": st.dictionaries(st.text(max_size=150), json_values,
                                                                           max_size=60),
              "description": st.text(max_size=3000), "event_time": json_values, "images": json_values},
)
CODES = {200: {None}, 400: {"InvalidParameter", "InvalidContentType"}}


async def test_ingest_survives_fuzzing(app):
    keys = {}
    from webhooks.registry import PARSERS

    for fmt in sorted(PARSERS):
        _, keys[fmt] = await app.channel_with_integration(name=f"fuzz-{fmt}", fmt=fmt)
    seen = []

    @settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
    @given(fmt=st.sampled_from(sorted(keys)), body=json_values | standardish)
    def check(fmt, body):
        seen.append((fmt, body))

    check()  # collect examples synchronously, then replay them on the event loop
    for fmt, body in seen:
        resp = await app.client.post(f"/event/push/alert/{fmt}", params={"integration_key": keys[fmt]},
                                     data=json.dumps(body), headers={"Content-Type": "application/json"})
        data = await resp.json()
        assert resp.status in CODES, (fmt, body, resp.status, data)
        assert "request_id" in data
        if resp.status != 200:
            assert data["error"]["code"] in CODES[resp.status]
            assert data["error"]["message"]
    health = await app.client.get("/healthz")
    assert health.status == 200
