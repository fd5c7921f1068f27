"""bot/cards/timeline_words.py: what each timeline entry says."""

import pytest

from bot.cards.timeline_words import headline, note

NAMES = {1: "Alice", 2: "Bob"}


@pytest.mark.parametrize("kind, actor, source, detail, text", [
    ("i_new", None, "system", {}, "Incident triggered"),
    ("i_ack", 1, "slack", {}, "Acknowledged by Alice via Slack"),
    ("i_ack", 9, "web", {}, "Acknowledged by member 9 via the web"),
    ("i_snooze", 1, "api", {"minutes": 30}, "Snoozed for 30 min by Alice via Open API"),
    ("i_assign", 1, "feishu", {"type": "reassign", "person_ids": [2]}, "Reassigned to Bob by Alice via Feishu"),
    ("i_assign", 2, "teams", {"type": "escalate"}, "Escalated by Bob via Teams"),
    ("i_merge", None, "api", {"merged_into": 7}, "Merged into incident 7 via Open API"),
    ("i_merge", 1, "api", {"merged": [3, 4]}, "Merged incidents 3, 4 into this one by Alice via Open API"),
    ("i_rslv", None, "system", {"reason": "all alerts recovered"}, "Closed"),
    ("delivery_sent", None, "system", {"medium": "sms", "person_id": 2}, "Page sent: sms to Bob"),
    ("delivery_failed", None, "system", {"medium": "bot", "bot_id": 4}, "Page failed: bot to bot 4"),
    ("delivery_sent", None, "system", {"medium": "im_chat", "chat_id": "C0OPS1234"},
     "Page sent: im_chat to chat C0OPS1234"),
    ("silence_similar", 2, "web", {"minutes": 60, "rule_id": 3}, "Similar alerts silenced for 60 min by Bob via the web"),
    ("something_new", None, "system", {}, "Something new"),
])
def test_headline(kind, actor, source, detail, text):
    assert headline(kind, actor, source, detail, NAMES) == text


@pytest.mark.parametrize("detail, text", [
    ({"comment": "looking"}, "looking"),
    ({"reason": "need DBA"}, "need DBA"),
    ({"error": "HTTP 500"}, "HTTP 500"),
    ({"minutes": 3}, ""),
])
def test_note(detail, text):
    assert note("x", detail) == text
