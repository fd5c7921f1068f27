"""Representative incident cards and helpers shared by the card tests."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

from bot.cards.model import CardImage, CustomButton, FieldInput, FieldValue, IncidentCard, TimelineLine
from bot.chat.actions import NOT_LIFECYCLE, Action, ActionData, ActionPayloadError
from core.types import Platform, Progress, Severity

NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
ALL_CARD_ACTIONS = tuple(a for a in Action if a not in NOT_LIFECYCLE)

CASES: dict[str, IncidentCard] = {
    "triggered_critical_all_actions": IncidentCard(
        incident_id=42, num="A1B2C3", title="Disk full on db-1 (< 5% free) & rising",
        severity=Severity.CRITICAL, progress=Progress.TRIGGERED, url="https://vigil.example.com/incidents/42",
        updated_at=NOW, channel_name="Payments", responders=("Alice Chen", "Bob Li"),
        labels=(("host", "db-1"), ("service", "postgres"), ("region", "eu-west-1")), alert_count=3,
        description="Free space on /var/lib/postgresql is below 5%.\nRun `df -h` on the host.",
        actions=ALL_CARD_ACTIONS,
    ),
    "processing_warning_acknowledged": IncidentCard(
        incident_id=7, num="Q9", title="p99 latency above 800 ms", severity=Severity.WARNING,
        progress=Progress.PROCESSING, url="https://vigil.example.com/incidents/7", updated_at=NOW,
        channel_name="Checkout API", responders=("Alice Chen",), acknowledged_by=("Alice Chen",),
        labels={"service": "checkout", "env": "prod"}, alert_count=12,
        snoozed_until=NOW + timedelta(hours=1),
        actions=(Action.UNACK, Action.CLOSE, Action.ESCALATE, Action.SNOOZE, Action.WAKE, Action.REASSIGN,
                 Action.COMMENT),
        snooze_choices=(15, 90, 480),
    ),
    "closed_info": IncidentCard(
        incident_id=1001, num="ZZ01", title="Certificate renewed", severity=Severity.INFO,
        progress=Progress.CLOSED, url="https://vigil.example.com/incidents/1001", updated_at=NOW,
        channel_name="Platform", responders=("Dana",), acknowledged_by=("Dana",), alert_count=1,
        actions=(Action.REOPEN, Action.COMMENT, Action.ACK),
    ),
    "unicode_long_title_many_labels": IncidentCard(
        incident_id=987654321, num="长-7", title="数据库主节点不可用 🔥 " * 40 + "— ünïcödé ✓",
        severity=Severity.CRITICAL, progress=Progress.TRIGGERED, url="https://vigil.example.com/incidents/987654321",
        updated_at=NOW, channel_name="基础设施 / Infra", responders=tuple(f"值班人员{i}" for i in range(30)),
        labels=tuple((f"label_{i:02d}", f"值-{i} <b>&</b>") for i in range(30)), alert_count=250,
        description="**bold** <at id=all></at> <!channel> " + "长描述 " * 300,
        actions=(Action.ACK, Action.SNOOZE, Action.SILENCE_SIMILAR),
    ),
    # The channel's custom actions: more than any platform draws as buttons, so each folds or cuts the rest.
    "custom_actions_and_timeline": IncidentCard(
        incident_id=42, num="A1B2C3", title="Disk full on db-1", severity=Severity.CRITICAL,
        progress=Progress.TRIGGERED, url="https://vigil.example.com/incidents/42", updated_at=NOW,
        channel_name="Payments", responders=("Alice Chen",), alert_count=1,
        actions=(Action.ACK, Action.CLOSE, Action.SNOOZE),
        custom_actions=(CustomButton(3, "Restart orders <svc> & co"), CustomButton(5, "Open Jira ticket"),
                        CustomButton(8, "Page DBA"), CustomButton(13, "Run playbook"), CustomButton(21, "Rollback")),
        timeline_button=True,
    ),
    # What a Timeline click answers with (Feishu shows it on the card); the other platforms ignore the entries.
    "timeline_view": IncidentCard(
        incident_id=7, num="Q9", title="p99 latency above 800 ms", severity=Severity.WARNING,
        progress=Progress.PROCESSING, url="https://vigil.example.com/incidents/7", updated_at=NOW,
        channel_name="Checkout API", responders=("Alice Chen",), acknowledged_by=("Alice Chen",), alert_count=2,
        actions=(Action.CLOSE,), custom_actions=(CustomButton(3, "Restart checkout"),), timeline_button=True,
        timeline=(TimelineLine(NOW, "Comment by Alice Chen via Slack", "rolled back *v2* <b>now</b>"),
                  TimelineLine(NOW - timedelta(minutes=5), "Acknowledged by Alice Chen via Feishu"),
                  TimelineLine(NOW - timedelta(minutes=9), "Incident triggered")),
    ),
    # A card in a group chat says who did what last: readers did not click it. Markup in a name stays text.
    "last_action_in_a_group": IncidentCard(
        incident_id=8, num="G7", title="Queue backlog above 10k", severity=Severity.WARNING,
        progress=Progress.PROCESSING, url="https://vigil.example.com/incidents/8", updated_at=NOW,
        channel_name="Orders", responders=("Ann *Lee*", "Bob"), acknowledged_by=("Ann *Lee*",), alert_count=4,
        actions=(Action.UNACK, Action.CLOSE, Action.SNOOZE),
        last_action="Acknowledged by Ann *Lee* <b>x</b> via Slack",
    ),
    # Alert images: shown where a platform shows one by URL, else a link; alt text is alert text (escaped), a
    # parenthesis in a URL must not end a Markdown link early.
    "alert_images": IncidentCard(
        incident_id=9, num="IM9", title="p99 latency above 800 ms", severity=Severity.CRITICAL,
        progress=Progress.TRIGGERED, url="https://vigil.example.com/incidents/9", updated_at=NOW,
        channel_name="Checkout API", responders=("Alice Chen",), alert_count=2,
        labels={"service": "checkout"}, actions=(Action.ACK, Action.CLOSE),
        images=(CardImage("https://grafana.example.com/render/p99.png?from=now-1h&to=now", "p99 *graph* <b>[x]</b>",
                          "https://grafana.example.com/d/p99?orgId=1&viewPanel=2"),
                CardImage("https://img.example.com/cpu_(host-1).png"),
                CardImage("https://img.example.com/mem.png", "memory")),
    ),
    # Custom fields: values everywhere (markup in them stays text); Slack draws a select, a multi-select and
    # checkboxes showing what is chosen, Feishu the single select; the others rely on the incident page.
    "custom_fields": IncidentCard(
        incident_id=12, num="F12", title="Checkout errors above 5%", severity=Severity.CRITICAL,
        progress=Progress.PROCESSING, url="https://vigil.example.com/incidents/12", updated_at=NOW,
        channel_name="Checkout API", responders=("Alice Chen",), acknowledged_by=("Alice Chen",), alert_count=1,
        actions=(Action.UNACK, Action.CLOSE),
        fields=(FieldValue("Impact", "High"), FieldValue("Systems", "db, api"), FieldValue("Customer facing", "Yes"),
                FieldValue("Notes *why*", "rollback <b>v2</b>")),
        field_inputs=(FieldInput(1, "Impact", "single_select", ("High", "Medium", "Low"), (0,)),
                      FieldInput(2, "Systems", "multi_select", ("db", "api", "web"), (0, 1)),
                      FieldInput(3, "Customer facing", "checkbox", ("Customer facing",), (0,)),
                      FieldInput(4, "Region", "single_select", ("eu", "us"))),
    ),
}


def huge_card() -> IncidentCard:
    """A card with every field far beyond any platform limit."""
    return IncidentCard(
        incident_id=2**63 - 1, num="N" * 40, title="T<&>" * 2000, severity=Severity.WARNING,
        progress=Progress.TRIGGERED, url="https://vigil.example.com/incidents/" + "9" * 19, updated_at=NOW,
        channel_name="C" * 1000, responders=tuple(f"Responder {i}" for i in range(500)),
        acknowledged_by=tuple(f"Acker {i}" for i in range(500)),
        labels=tuple((f"k{i}" * 50, f"v{i}<&>" * 80) for i in range(500)), alert_count=10**9,
        description="D<&>é漢" * 50_000, snoozed_until=NOW, actions=ALL_CARD_ACTIONS,
        snooze_choices=tuple(range(1, 40)),
        fields=tuple((f"Field {i} <&>" * 40, "V<&>漢" * 500) for i in range(50)),
        field_inputs=tuple(FieldInput(i + 1, f"F{i}<&>" * 100, kind, ("c" * 500,) if kind == "checkbox" else
                                      tuple(f"option {j} 漢<&>" * 30 for j in range(100)), (0,))
                           for i, kind in enumerate(("single_select", "multi_select", "checkbox") * 5)),
        images=tuple(CardImage(f"https://img.example.com/{i}/" + "(" * 486, "]<&*>" * 100, "https://x.example/" + ")" * 494)
                     for i in range(10)),
    )


def strings(node: Any) -> Iterator[str]:
    """Every string in a rendered card, descending into JSON-encoded strings (DingTalk params)."""
    if isinstance(node, dict):
        for value in node.values():
            yield from strings(value)
    elif isinstance(node, list):
        for value in node:
            yield from strings(value)
    elif isinstance(node, str):
        yield node
        if node[:1] in "[{":
            try:
                yield from strings(json.loads(node))
            except ValueError:
                pass


def payloads(rendered: dict[str, Any]) -> list[tuple[str, ActionData]]:
    """All (packed, unpacked) button payloads found anywhere in a rendered card."""
    found = []
    for text in strings(rendered):
        try:
            found.append((text, ActionData.unpack(text)))
        except ActionPayloadError:
            continue
    return found


# Actions a platform cannot put on the card itself (they need input the card cannot collect).
NOT_ON_CARD: dict[Platform, frozenset[Action]] = {
    Platform.SLACK: frozenset(),
    Platform.FEISHU: frozenset(),
    Platform.TEAMS: frozenset(),
    Platform.WECOM: frozenset({Action.COMMENT, Action.REASSIGN}),
    Platform.DINGTALK: frozenset({Action.COMMENT, Action.REASSIGN}),
}
