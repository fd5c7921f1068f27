"""Standard events (reference 1.2): required fields, limits, truncation, generated keys, images."""

from datetime import UTC, datetime

import pytest

from core.types import EventStatus, Image
from webhooks.errors import InvalidParameter
from webhooks.standard import parse


def ev(**fields):
    return {"event_status": "Warning", "title_rule": "disk full", **fields}


def one(body, now):
    [event] = parse(body, {}, now)
    return event


@pytest.mark.parametrize(
    "body, field",
    [
        ([1, 2], "body"),
        ("text", "body"),
        (None, "body"),
        ({"title_rule": "x"}, "event_status"),
        (ev(event_status="critical"), "event_status"),
        (ev(event_status="OK"), "event_status"),
        (ev(event_status=1), "event_status"),
        ({"event_status": "Info"}, "title_rule"),
        (ev(title_rule="   "), "title_rule"),
        (ev(title_rule=["a"]), "title_rule"),
        (ev(alert_key="k" * 256), "alert_key"),
        (ev(alert_key=12), "alert_key"),
        (ev(event_status="Ok"), "alert_key"),
        (ev(event_status="Ok", alert_key=""), "alert_key"),
        (ev(description={"a": 1}), "description"),
        (ev(labels=["a=b"]), "labels"),
        (ev(labels={f"k{i}": "v" for i in range(51)}), "labels"),
        (ev(labels={"bad key": "v"}), "labels.bad key"),
        (ev(labels={"1abc": "v"}), "labels.1abc"),
        (ev(labels={"a-b": "v"}), "labels.a-b"),
        (ev(labels={"ok\n": "v"}), "labels.ok\n"),
        (ev(labels={"服务": "v"}), "labels.服务"),
        (ev(labels={"a" * 129: "v"}), f"labels.{'a' * 40}..."),
        (ev(labels={"obj": {"x": 1}}), "labels.obj"),
        (ev(labels={"arr": [1]}), "labels.arr"),
        (ev(labels={"big": 10**5000}), "labels.big"),
        (ev(event_time=-1), "event_time"),
        (ev(event_time="1700000000"), "event_time"),
        (ev(event_time=True), "event_time"),
        (ev(event_time=float("inf")), "event_time"),
        (ev(event_time=float("nan")), "event_time"),
        (ev(event_time=10**30), "event_time"),
        (ev(event_time=[1]), "event_time"),
        (ev(images={"src": "https://x"}), "images"),
        (ev(images=["https://x/a.png"]), "images[0]"),
        (ev(images=[{"src": "https://x/a.png", "alt": 5}]), "images[0].alt"),
        (ev(images=[{"src": "https://x/a.png", "href": 5}]), "images[0].href"),
    ],
)
def test_invalid_input_names_its_field(body, field, now):
    with pytest.raises(InvalidParameter) as err:
        parse(body, {}, now)
    assert err.value.field == field
    assert field in str(err.value)


def test_minimal_event_gets_defaults(now):
    event = one(ev(), now)
    assert (event.event_status, event.title, event.title_rule) == (
        EventStatus.WARNING,
        "disk full",
        "disk full",
    )
    assert (event.description, event.labels, event.images, event.event_time) == ("", {}, [], now)


@pytest.mark.parametrize(
    "a, b, same",
    [
        (ev(labels={"x": "1", "y": "2"}), ev(labels={"y": "2", "x": "1"}), True),
        (ev(), ev(event_status="Critical", description="other"), True),
        (ev(labels={"x": "1"}), ev(labels={"x": "2"}), False),
        (ev(title_rule="a"), ev(title_rule="b"), False),
        (ev(labels={"a": "b=c"}), ev(labels={"a": "b", "c": ""}), False),
    ],
)
def test_generated_alert_key_is_deterministic(a, b, same, now):
    ka, kb = one(a, now).alert_key, one(b, now).alert_key
    assert (ka == kb) is same
    assert 0 < len(ka) <= 255


def test_given_alert_key_is_kept_and_ok_needs_one(now):
    assert one(ev(alert_key="k" * 255), now).alert_key == "k" * 255
    assert one(ev(event_status="Ok", alert_key="disk-1"), now).event_status is EventStatus.OK


@pytest.mark.parametrize(
    "field, value, limit",
    [
        ("title_rule", "t" * 600, 512),
        ("description", "d" * 5000, 2048),
    ],
)
def test_long_text_is_truncated(field, value, limit, now):
    event = one(ev(**{field: value}), now)
    assert len(getattr(event, field)) == limit
    if field == "title_rule":
        assert len(event.title) == 512


def test_rendered_title_is_truncated_after_rendering(now):
    event = one(ev(title_rule="$a $a", labels={"a": "x" * 400}), now)
    assert event.title == ("x" * 400 + " " + "x" * 400)[:512]


def test_labels_values_converted_and_truncated(now):
    labels = one(
        ev(labels={"n": 3, "f": 1.5, "t": True, "z": None, "long": "v" * 3000, "u": "数据库 🔥"}), now
    ).labels
    assert labels == {"n": "3", "f": "1.5", "t": "true", "z": "", "long": "v" * 2048, "u": "数据库 🔥"}


def test_fifty_labels_are_fine(now):
    assert len(one(ev(labels={f"k{i}": "v" for i in range(50)}), now).labels) == 50


def test_label_key_of_128_characters_is_fine(now):
    assert list(one(ev(labels={"k" * 128: "v"}), now).labels) == ["k" * 128]


@pytest.mark.parametrize(
    "raw, expected",
    [
        (None, datetime(2026, 11, 22, 18, 0, tzinfo=UTC)),
        (0, datetime(2026, 11, 22, 18, 0, tzinfo=UTC)),  # Go's zero value: treated as absent
        (1795369800, datetime(2026, 11, 22, 17, 50, tzinfo=UTC)),
        (1795369800.5, datetime(2026, 11, 22, 17, 50, 0, 500000, tzinfo=UTC)),
        (1795369800123, datetime(2026, 11, 22, 17, 50, 0, 123000, tzinfo=UTC)),
        (1, datetime(1970, 1, 1, 0, 0, 1, tzinfo=UTC)),
    ],
)
def test_event_time(raw, expected, now):
    event = one(ev(event_time=raw), now)
    assert event.event_time == expected
    assert event.event_time.tzinfo is not None


@pytest.mark.parametrize(
    "images, expected",
    [
        ([{"src": "https://g/a.png"}], [Image(src="https://g/a.png")]),
        (
            [{"src": "HTTP://g/a.png", "alt": "a", "href": "https://g/d"}],
            [Image("HTTP://g/a.png", "a", "https://g/d")],
        ),
        ([{"src": "img_v2_0a1b-c"}], [Image(src="img_v2_0a1b-c")]),
        ([{"src": "https://g/" + "a" * 300}], []),
        ([{"src": "javascript:alert(1)"}], []),
        ([{"src": "data:image/png;base64,AAAA"}], []),
        ([{"src": "https://g/a b.png"}], []),
        ([{"src": 5}, {"alt": "no src"}], []),
        ([{"src": "https://g/a.png", "href": "javascript:x"}], [Image(src="https://g/a.png")]),
        ([{"src": "https://g/a.png", "alt": "x" * 200}], [Image(src="https://g/a.png", alt="x" * 128)]),
        (
            [{"src": "https://g/a.png", "href": "https://g/" + "h" * 300}],
            [Image(src="https://g/a.png", href=("https://g/" + "h" * 300)[:256])],
        ),
        (
            [
                {"src": "https://g/1.png", "alt": "cpu"},
                {"src": "https://g/2.png", "alt": "mem"},
                {"src": "https://g/3.png", "alt": "cpu"},
            ],
            [Image("https://g/2.png", "mem"), Image("https://g/3.png", "cpu")],
        ),
        ([{"src": "https://g/1.png"}, {"src": "https://g/2.png", "alt": ""}], [Image("https://g/2.png")]),
        ([], []),
    ],
)
def test_images(images, expected, now):
    assert one(ev(images=images), now).images == expected


def test_unicode_title_rule_and_labels(now):
    event = one(ev(title_rule="磁盘已满 🔥 $svc", labels={"svc": "数据库"}), now)
    assert event.title == "磁盘已满 🔥 数据库"
    assert event.labels == {"svc": "数据库"}


def test_unknown_fields_are_ignored(now):
    assert one(ev(extra={"anything": [1, 2]}), now).title == "disk full"


def test_template_sees_generated_key_and_severity(now):
    event = one(ev(title_rule="[TPL]{{.EventSeverity}}/{{.AlertKey}}"), now)
    assert event.title == f"Warning/{event.alert_key}"
