"""Bot configs are validated with clear errors, and the severity / event-type filters pick what a bot posts."""

from __future__ import annotations

import pytest

from bot.group_bots import BotConfig, wants
from core.errors import InvalidInput
from core.types import Severity

CRIT, WARN, INFO = Severity.CRITICAL, Severity.WARNING, Severity.INFO


@pytest.mark.parametrize(("severities", "event_types", "severity", "event", "expected"), [
    ((), (), INFO, "i_new", True),  # empty filters: everything
    (("Critical",), (), CRIT, "i_ack", True),
    (("Critical",), (), WARN, "i_new", False),
    ((CRIT, WARN), (), WARN, "i_new", True),
    ((), ("i_new", "i_rslv"), INFO, "i_rslv", True),
    ((), ("i_new", "i_rslv"), INFO, "i_ack", False),
    (("Critical",), ("i_new",), CRIT, "i_new", True),
    (("Critical",), ("i_new",), CRIT, "i_ack", False),
    (("Critical",), ("i_new",), INFO, "i_new", False),
    (("Info",), (), "Info", "i_new", True),  # a severity given as its string value
])
def test_wants(severities, event_types, severity, event, expected):
    config = BotConfig(type="dingtalk", url="tok", severities=severities, event_types=event_types)
    assert wants(config, severity, event) is expected


@pytest.mark.parametrize(("fields", "names"), [
    ({"type": "msteams"}, "bot.type"),
    ({"url": "  "}, "bot.url"),
    ({"severities": ["Fatal"]}, "bot.severities"),
    ({"event_types": "i_new"}, "bot.event_types"),
    ({"event_types": ["i_new", ""]}, "bot.event_types"),
    ({"type": "telegram"}, "bot.chat_ids"),
    ({"type": "zoom"}, "bot.secret"),
    ({"timeout": 0}, "bot.timeout"),
])
def test_bad_config_names_the_field(fields, names):
    with pytest.raises(InvalidInput, match=names):
        BotConfig(**({"type": "dingtalk", "url": "https://example.com/hook"} | fields))


def test_lists_become_tuples_so_configs_are_hashable():
    config = BotConfig(type="telegram", url="t", chat_ids=["-1"], severities=["Critical"], event_types=["i_new"])
    assert config.chat_ids == ("-1",) and config.severities == (CRIT,) and config.event_types == ("i_new",)
    assert hash(config) == hash(BotConfig(type="telegram", url="t", chat_ids=("-1",), severities=(CRIT,),
                                          event_types=("i_new",)))
