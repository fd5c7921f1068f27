"""Standard alert events (Flashduty Event API, reference 1.2), and the field rules every format shares.

Limits follow the reference: title 512 and description 2048 characters (truncated), alert_key at most
255 (rejected when longer), labels at most 50 with Prometheus-style keys of at most 128 characters and
values truncated at 2048, images `{alt, src, href}` with alt 128 / src 256 / href 256.

Standard events are strict: a bad label key or a 51st label is an error, because the sender controls
the payload. Third-party formats (Prometheus, Grafana, ...) go through `source_labels`, which is
lenient instead: keys are sanitised and labels past the 50th are dropped, so a page from a monitoring
system whose payload the user cannot easily change is never refused for its label set.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from core.types import AlertEvent, EventStatus, Image
from webhooks.errors import InvalidParameter
from webhooks.title_rule import TitleContext, render

TITLE_MAX, DESCRIPTION_MAX, ALERT_KEY_MAX = 512, 2048, 255
LABEL_KEY_MAX, LABEL_VALUE_MAX, LABELS_MAX = 128, 2048, 50
IMAGE_ALT_MAX, IMAGE_SRC_MAX, IMAGE_HREF_MAX = 128, 256, 256
LABEL_KEY = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
# An image_key from Flashduty's upload API is an opaque token: no scheme, no spaces, no path tricks.
IMAGE_KEY = re.compile(r"[A-Za-z0-9_\-]{1,256}")
MS_THRESHOLD = 1e12  # event_time above this is taken as milliseconds (1e12 s is the year 33658)
STATUSES = ", ".join(s.value for s in EventStatus)


def status_of(raw: Any, field: str = "event_status") -> EventStatus:
    """The event status, exact case as the reference requires."""
    if raw is None:
        raise InvalidParameter(field, f"{field} is required; one of {STATUSES}")
    if isinstance(raw, str):
        try:
            return EventStatus(raw)
        except ValueError:
            pass
    raise InvalidParameter(field, f"{field} must be one of {STATUSES}, got {_show(raw)}")


def text_of(raw: Any, field: str, limit: int, *, required: bool = False) -> str:
    """A string field truncated at `limit`; None means absent."""
    if raw is None:
        if required:
            raise InvalidParameter(field, f"{field} is required")
        return ""
    if not isinstance(raw, str):
        raise InvalidParameter(field, f"{field} must be a string")
    if required and not raw.strip():
        raise InvalidParameter(field, f"{field} must not be empty")
    return raw[:limit]


def scalar_text(raw: Any, field: str) -> str:
    """A label-like value as text: strings as they are, numbers and booleans converted, null as ""."""
    if raw is None:
        return ""
    if isinstance(raw, str):
        return raw
    if isinstance(raw, bool):
        return "true" if raw else "false"
    if isinstance(raw, int | float):
        try:
            return str(raw)
        except ValueError:  # ints beyond Python's str() digit limit
            raise InvalidParameter(field, f"{field} is too large a number") from None
    raise InvalidParameter(field, f"{field} must be a string, number or boolean, not an object or array")


def labels_of(raw: Any, field: str = "labels") -> dict[str, str]:
    """Strict labels of a standard event: at most 50, Prometheus-style keys, values truncated."""
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        raise InvalidParameter(field, f"{field} must be an object of string values")
    if len(raw) > LABELS_MAX:
        raise InvalidParameter(field, f"{field} has {len(raw)} entries; at most {LABELS_MAX} are allowed")
    out: dict[str, str] = {}
    for key, value in raw.items():
        name = f"{field}.{key}"
        if len(key) > LABEL_KEY_MAX:
            name = f"{field}.{key[:40]}..."
            raise InvalidParameter(name, f"{name}: label keys are at most {LABEL_KEY_MAX} characters")
        if not LABEL_KEY.fullmatch(key):
            raise InvalidParameter(name, f"{name}: label keys must match [a-zA-Z_][a-zA-Z0-9_]*")
        out[key] = scalar_text(value, name)[:LABEL_VALUE_MAX]
    return out


def sanitize_key(key: str) -> str:
    """Make any tag name a valid label key, the way Prometheus relabelling does."""
    clean = re.sub(r"[^a-zA-Z0-9_]", "_", key)
    if not clean or clean[0].isdigit():
        clean = "_" + clean
    return clean[:LABEL_KEY_MAX]


def source_labels(raw: Any, field: str) -> dict[str, str]:
    """Lenient labels of a third-party payload: keys sanitised, the first 50 kept."""
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        raise InvalidParameter(field, f"{field} must be an object of string values")
    out: dict[str, str] = {}
    add_labels(out, ((str(k), scalar_text(v, f"{field}.{k}")) for k, v in raw.items()))
    return out


def add_labels(labels: dict[str, str], extra: Iterable[tuple[str, str]]) -> None:
    """Add labels that are not there yet (existing keys win), skipping empty values, up to 50."""
    for key, value in extra:
        key = sanitize_key(key)
        if value and key not in labels and len(labels) < LABELS_MAX:
            labels[key] = value[:LABEL_VALUE_MAX]


def event_time_of(raw: Any, now: datetime, field: str = "event_time") -> datetime:
    """Unix seconds (milliseconds accepted above 1e12) as an aware UTC datetime; absent or 0 means now."""
    if raw is None or (raw == 0 and not isinstance(raw, bool)):
        return now
    if isinstance(raw, bool) or not isinstance(raw, int | float):
        raise InvalidParameter(field, f"{field} must be a unix timestamp in seconds, got {_show(raw)}")
    if isinstance(raw, float) and not math.isfinite(raw) or raw < 0:
        raise InvalidParameter(field, f"{field} must be a non-negative unix timestamp in seconds")
    seconds = raw / 1000 if raw > MS_THRESHOLD else raw
    try:
        return datetime.fromtimestamp(seconds, UTC)
    except (OverflowError, OSError, ValueError):
        raise InvalidParameter(field, f"{field} is out of range") from None


def is_web_url(raw: str) -> bool:
    """True for an http(s) URL without whitespace (safe to render as a link)."""
    return raw.lower().startswith(("http://", "https://")) and not re.search(r"\s", raw)


def image_of(src: Any, alt: str = "", href: str = "") -> Image | None:
    """An image within the reference limits, or None when `src` is unusable (the event is still kept)."""
    if not isinstance(src, str) or len(src) > IMAGE_SRC_MAX:
        return None
    if not (is_web_url(src) or IMAGE_KEY.fullmatch(src)):
        return None
    href = href[:IMAGE_HREF_MAX] if is_web_url(href) else ""
    return Image(src=src, alt=alt[:IMAGE_ALT_MAX], href=href)


def images_of(raw: Any, field: str = "images") -> list[Image]:
    """Images of a standard event; one per alt (the last wins), unusable sources dropped."""
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise InvalidParameter(field, f"{field} must be a list of {{alt, src, href}} objects")
    by_alt: dict[str, Image] = {}
    for i, item in enumerate(raw):
        name = f"{field}[{i}]"
        if not isinstance(item, Mapping):
            raise InvalidParameter(name, f"{name} must be an object with alt, src, href")
        image = image_of(
            item.get("src"),
            text_of(item.get("alt"), f"{name}.alt", IMAGE_ALT_MAX),
            text_of(item.get("href"), f"{name}.href", IMAGE_HREF_MAX),
        )
        if image is not None:
            by_alt.pop(image.alt, None)
            by_alt[image.alt] = image
    return list(by_alt.values())


def generated_key(parts: Iterable[str], labels: Mapping[str, str]) -> str:
    """A deterministic alert_key for events that carry none, so identical events dedup."""
    h = hashlib.sha256()
    for part in parts:
        h.update(part.encode("utf-8", "surrogatepass") + b"\x1e")
    for k in sorted(labels):
        h.update(k.encode() + b"=" + labels[k].encode("utf-8", "surrogatepass") + b"\x1f")
    return h.hexdigest()[:32]


def bounded_key(raw: str) -> str:
    """A source identifier as alert_key; hashed when it is longer than alert_key allows."""
    if len(raw) <= ALERT_KEY_MAX:
        return raw
    return hashlib.sha256(raw.encode("utf-8", "surrogatepass")).hexdigest()[:32]


def title_of(rule: str, ctx: TitleContext) -> str:
    """Render a title rule, truncated; a rule that renders to nothing keeps its own text."""
    title = render(rule, ctx)[:TITLE_MAX]
    return title if title.strip() else rule[:TITLE_MAX]


def _show(raw: Any) -> str:
    if isinstance(raw, Mapping | list):
        return "an object" if isinstance(raw, Mapping) else "an array"
    try:
        return repr(raw)[:60]
    except ValueError:  # ints beyond Python's str() digit limit
        return "a huge number"


def parse(body: object, query: Mapping[str, str], now: datetime) -> list[AlertEvent]:
    """One standard event (reference 1.2); query overrides are applied by the registry."""
    if not isinstance(body, Mapping):
        raise InvalidParameter("body", "body must be a JSON object with event_status and title_rule")
    status = status_of(body.get("event_status"))
    rule = text_of(body.get("title_rule"), "title_rule", TITLE_MAX, required=True)
    labels = labels_of(body.get("labels"))
    description = text_of(body.get("description"), "description", DESCRIPTION_MAX)
    key = body.get("alert_key")
    if key is not None and not isinstance(key, str):
        raise InvalidParameter("alert_key", "alert_key must be a string")
    if key and len(key) > ALERT_KEY_MAX:
        raise InvalidParameter("alert_key", f"alert_key is {len(key)} characters; at most {ALERT_KEY_MAX}")
    if not key:
        if status is EventStatus.OK:
            raise InvalidParameter("alert_key", "alert_key is required for Ok events")
        key = generated_key([rule], labels)
    severity = status.severity
    ctx = TitleContext(
        labels=labels,
        event_status=status.value,
        event_severity=severity.value if severity else "",
        alert_key=key,
        description=description,
        title_rule=rule,
    )
    return [
        AlertEvent(
            event_status=status,
            title=title_of(rule, ctx),
            alert_key=key,
            title_rule=rule,
            description=description,
            labels=labels,
            event_time=event_time_of(body.get("event_time"), now),
            images=images_of(body.get("images")),
        )
    ]
