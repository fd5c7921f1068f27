"""Change events (reference section 2)."""

from datetime import UTC, datetime

import pytest

from webhooks.change import STATUSES, parse
from webhooks.errors import InvalidParameter


def change(**fields):
    body = {
        "change_status": "Processing",
        "change_key": "CHG-1024",
        "title": "deploy checkout v2.3",
        **fields,
    }
    return {k: v for k, v in body.items() if v is not None}


@pytest.mark.parametrize("status", STATUSES)
def test_every_status_is_accepted(status, now):
    [c] = parse(change(change_status=status), {}, now)
    assert c.change_status == status


def test_full_change(now):
    [c] = parse(
        change(
            description="d" * 3000,
            link="https://ci.example.com/runs/1",
            event_time=1795370700,
            labels={"service": "checkout", "replicas": 3},
        ),
        {},
        now,
    )
    assert (c.change_key, c.title, c.link) == (
        "CHG-1024",
        "deploy checkout v2.3",
        "https://ci.example.com/runs/1",
    )
    assert len(c.description) == 2048
    assert c.labels == {"service": "checkout", "replicas": "3"}
    assert c.event_time == datetime(2026, 11, 22, 18, 5, tzinfo=UTC)


def test_defaults_and_future_time(now):
    [c] = parse(change(), {}, now)
    assert (c.event_time, c.description, c.link, c.labels) == (now, "", "", {})
    [later] = parse(change(change_status="Ready", event_time=4102444800), {}, now)
    assert later.event_time > now


def test_unicode_and_truncated_title(now):
    [c] = parse(change(title="发布 🚀" * 300), {}, now)
    assert c.title == ("发布 🚀" * 300)[:512]


@pytest.mark.parametrize(
    "body, field",
    [
        ([], "body"),
        (change(change_status=None), "change_status"),
        (change(change_status="done"), "change_status"),
        (change(change_status=["Done"]), "change_status"),
        (change(change_key=None), "change_key"),
        (change(change_key=" "), "change_key"),
        (change(change_key="k" * 256), "change_key"),
        (change(title=None), "title"),
        (change(title=7), "title"),
        (change(link="javascript:alert(1)"), "link"),
        (change(link="https://x/" + "a" * 2048), "link"),
        (change(link=5), "link"),
        (change(description=[]), "description"),
        (change(labels={"bad key": "v"}), "labels.bad key"),
        (change(labels={f"k{i}": "v" for i in range(51)}), "labels"),
        (change(event_time=-5), "event_time"),
    ],
)
def test_bad_input_names_the_field(body, field, now):
    with pytest.raises(InvalidParameter) as err:
        parse(body, {}, now)
    assert err.value.field == field and field in str(err.value)
