"""Zabbix webhook media type (Zabbix 5.0+): one alert event per Zabbix problem, recovery or update.

Zabbix has no fixed webhook body; this is the JSON Vigil's media type sends. Its script builds the
object from media-type parameters whose values are Zabbix macros (every value may arrive as a string):

    {
      "event_id":            "{EVENT.ID}",            problem event id (same in the recovery message)
      "event_name":          "{EVENT.NAME}",          -> title (required, or trigger_description)
      "event_severity":      "{EVENT.SEVERITY}",      Not classified|Information|Warning|Average|High|Disaster
      "event_nseverity":     "{EVENT.NSEVERITY}",     0..5, used when event_severity is absent
      "event_value":         "{EVENT.VALUE}",         1 problem, 0 recovery (required)
      "event_update_status": "{EVENT.UPDATE.STATUS}", 1 for update operations (ack, comment): still a problem
      "event_timestamp":     1714563910,              unix seconds, computed by the script (preferred)
      "event_date":          "{EVENT.DATE}",          2024.05.01  } used when event_timestamp is absent,
      "event_time":          "{EVENT.TIME}",          13:45:10    } in `event_tz` (e.g. "+08:00", default UTC)
      "event_recovery_date": "{EVENT.RECOVERY.DATE}", "event_recovery_time": "{EVENT.RECOVERY.TIME}",
      "event_tags":          "{EVENT.TAGSJSON}",      [{"tag": "...", "value": "..."}] as JSON text or array
      "event_opdata":        "{EVENT.OPDATA}",
      "host_host":           "{HOST.HOST}",           technical host name
      "host_name":           "{HOST.NAME}",           visible host name
      "host_ip":             "{HOST.IP}",
      "trigger_id":          "{TRIGGER.ID}",          (required)
      "trigger_description": "{TRIGGER.DESCRIPTION}",
      "item_value":          "{ITEM.LASTVALUE}",
      "zabbix_url":          "https://zabbix.example.com"   media-type parameter, for links
    }

Flashduty's own Zabbix setup is also understood. The one field list Flashduty publishes is the
"Required" block its 3.x/4.x setup appends to the action's default message (FDD alert-sources/zabbix):

    -----Flashduty Required Starts-----event_severity={TRIGGER.SEVERITY}||event_name={TRIGGER.NAME}||
    event_id={EVENT.ID}||event_tags={EVENT.TAGS}||event_ack={EVENT.ACK.STATUS}||event_value={EVENT.VALUE}||
    trigger_id={TRIGGER.ID}||trigger_desc={TRIGGER.DESCRIPTION}||trigger_expr={TRIGGER.EXPRESSION}||
    host_group={TRIGGER.HOSTGROUP.NAME}||host_ip={HOST.IP}||host_name={HOST.NAME}||item_name={ITEM.NAME}||
    item_value={ITEM.VALUE}-----Flashduty Required Ends-----

Those names are accepted as body fields (`trigger_desc` for trigger_description, `event_tags` as the
`{EVENT.TAGS}` text "tag:value, tag2:value2", `host_group` and `item_name` as labels), and a body whose
top-level text values carry that block (whatever the sending script calls them) is read from it;
fields given directly in the body win over the block.

Mapping: event_value 0 -> Ok; otherwise Disaster/High -> Critical, Average/Warning -> Warning,
Information/Not classified -> Info. alert_key is `zabbix:<trigger_id>:<host>` so a problem and its
recovery meet on one alert. The title is event_name; the description is trigger_description plus the
operational data and last value. Labels are the event tags (sanitised keys; repeated tags joined with
",", a tag without value reads "true"), then host, host_name, host_ip, host_group, item_name,
trigger_id, event_id, severity and event_url. A value that is still an unexpanded macro (`{HOST.IP}`)
or `*UNKNOWN*` counts as absent.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from core.types import AlertEvent, EventStatus
from webhooks.errors import InvalidParameter
from webhooks.prometheus import number_of
from webhooks.standard import (
    DESCRIPTION_MAX,
    TITLE_MAX,
    add_labels,
    bounded_key,
    event_time_of,
    is_web_url,
    scalar_text,
)

SEVERITIES = {
    "disaster": EventStatus.CRITICAL,
    "high": EventStatus.CRITICAL,
    "average": EventStatus.WARNING,
    "warning": EventStatus.WARNING,
    "information": EventStatus.INFO,
    "not classified": EventStatus.INFO,
}
NSEVERITIES = ("not classified", "information", "warning", "average", "high", "disaster")
_MACRO = re.compile(r"\{[A-Z0-9_.$#]+\}|\*UNKNOWN\*")
_TZ = re.compile(r"([+-])(\d{2}):?(\d{2})")
_REQUIRED = re.compile(
    r"-----Flashduty Required Starts-----(.*?)-----Flashduty Required Ends-----", re.S | re.I
)


def parse(body: object, query: Mapping[str, str], now: datetime) -> list[AlertEvent]:
    """One alert event from Vigil's Zabbix media type (or from Flashduty's Zabbix fields)."""
    if not isinstance(body, Mapping):
        raise InvalidParameter("body", "body must be a JSON object (Vigil's Zabbix media type)")
    get = _Fields({**_required_block(body), **body})
    value = get("event_value")
    if value not in ("0", "1"):
        raise InvalidParameter("event_value", "event_value is required: 1 for a problem, 0 for a recovery")
    recovered = value == "0"
    severity_name = _severity_name(get("event_severity"), get("event_nseverity"), required=not recovered)
    trigger = get("trigger_id")
    if not trigger:
        raise InvalidParameter("trigger_id", "trigger_id is required ({TRIGGER.ID})")
    description = get("trigger_description") or get("trigger_desc")
    title = (get("event_name") or description)[:TITLE_MAX]
    if not title:
        raise InvalidParameter("event_name", "event_name is required ({EVENT.NAME})")
    host = get("host_host") or get("host_name")
    labels = _tags(get.body.get("event_tags"))
    event_id, url = get("event_id"), get("zabbix_url").rstrip("/")
    add_labels(
        labels,
        [
            ("host", host),
            ("host_name", get("host_name")),
            ("host_ip", get("host_ip")),
            ("host_group", get("host_group")),
            ("item_name", get("item_name")),
            ("trigger_id", trigger),
            ("event_id", event_id),
            ("severity", severity_name.title() if severity_name else ""),
            (
                "event_url",
                f"{url}/tr_events.php?triggerid={trigger}&eventid={event_id}"
                if is_web_url(url) and event_id
                else "",
            ),
        ],
    )
    details = [
        description,
        _line("Operational data", get("event_opdata")),
        _line("Last value", get("item_value")),
    ]
    return [
        AlertEvent(
            event_status=EventStatus.OK if recovered else SEVERITIES[severity_name],
            title=title,
            alert_key=bounded_key(f"zabbix:{trigger}:{host}"),
            title_rule=title,
            description="\n".join(d for d in details if d)[:DESCRIPTION_MAX],
            labels=labels,
            event_time=_event_time(get, recovered, now),
        )
    ]


def _required_block(body: Mapping[str, Any]) -> dict[str, str]:
    """The fields of a Flashduty "Required" block found in one of the body's text values."""
    for value in body.values():
        found = _REQUIRED.search(value) if isinstance(value, str) else None
        if found:
            pairs = (pair.partition("=") for pair in found.group(1).split("||"))
            return {key.strip(): text for key, sep, text in pairs if sep and key.strip()}
    return {}


class _Fields:
    """Scalar fields of the body as stripped text, with unexpanded macros read as absent."""

    def __init__(self, body: Mapping[str, Any]) -> None:
        self.body = body

    def __call__(self, name: str) -> str:
        text = scalar_text(self.body.get(name), name).strip()
        return "" if _MACRO.fullmatch(text) else text


def _severity_name(name: str, number: str, *, required: bool) -> str:
    if name:
        if name.lower() not in SEVERITIES:
            raise InvalidParameter(
                "event_severity", f"event_severity must be one of {', '.join(NSEVERITIES)}"
            )
        return name.lower()
    if number:
        if number not in ("0", "1", "2", "3", "4", "5"):
            raise InvalidParameter("event_nseverity", "event_nseverity must be 0..5")
        return NSEVERITIES[int(number)]
    if required:
        raise InvalidParameter(
            "event_severity", "event_severity is required for a problem ({EVENT.SEVERITY})"
        )
    return ""


def _tags(raw: Any) -> dict[str, str]:
    if isinstance(raw, str):
        if not raw.strip() or _MACRO.fullmatch(raw.strip()):
            return {}
        if raw.strip()[0] not in "[{":  # {EVENT.TAGS}: "tag:value, tag2:value2"
            pairs = (part.partition(":") for part in raw.split(","))
            raw = [{"tag": tag.strip(), "value": value.strip()} for tag, _, value in pairs]
        else:
            try:
                raw = json.loads(raw)
            except ValueError:
                raise InvalidParameter(
                    "event_tags", "event_tags must be {EVENT.TAGSJSON} (a JSON array) or {EVENT.TAGS}"
                ) from None
    if raw is None:
        return {}
    if isinstance(raw, Mapping):  # {"tag": "value"} from a hand-made script
        raw = [{"tag": k, "value": v} for k, v in raw.items()]
    if not isinstance(raw, list):
        raise InvalidParameter("event_tags", "event_tags must be an array of {tag, value}")
    joined: dict[str, list[str]] = {}
    for i, item in enumerate(raw):
        if not isinstance(item, Mapping):
            raise InvalidParameter(
                f"event_tags[{i}]", f"event_tags[{i}] must be an object with tag and value"
            )
        tag = scalar_text(item.get("tag"), f"event_tags[{i}].tag")
        if tag:
            joined.setdefault(tag, []).append(scalar_text(item.get("value"), f"event_tags[{i}].value"))
    labels: dict[str, str] = {}
    add_labels(labels, [(tag, ",".join(v for v in values if v) or "true") for tag, values in joined.items()])
    return labels


def _line(name: str, value: str) -> str:
    return f"{name}: {value}" if value else ""


def _event_time(get: _Fields, recovered: bool, now: datetime) -> datetime:
    seconds = number_of(get("event_timestamp"))
    if seconds is not None:
        return event_time_of(seconds, now, "event_timestamp")
    prefix = "event_recovery" if recovered else "event"
    date, clock = get(f"{prefix}_date"), get(f"{prefix}_time")
    if not date or not clock:
        return now
    try:
        local = datetime.strptime(f"{date} {clock}", "%Y.%m.%d %H:%M:%S")
    except ValueError:
        raise InvalidParameter(
            f"{prefix}_date", f"{prefix}_date and {prefix}_time must look like 2024.05.01 and 13:45:10"
        ) from None
    return local.replace(tzinfo=_zone(get("event_tz"))).astimezone(UTC)


def _zone(raw: str) -> timezone:
    if not raw or raw.upper() in ("UTC", "Z"):
        return UTC
    m = _TZ.fullmatch(raw)
    if not m or int(m.group(2)) > 23 or int(m.group(3)) > 59:
        raise InvalidParameter("event_tz", "event_tz must be a UTC offset such as +08:00")
    delta = timedelta(hours=int(m.group(2)), minutes=int(m.group(3)))
    return timezone(-delta if m.group(1) == "-" else delta)
