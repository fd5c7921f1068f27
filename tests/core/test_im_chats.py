"""Which group-chat ids each chat platform takes (core/im_chats.py): table-tested."""

from __future__ import annotations

import pytest

from core.im_chats import chat_id_problem


@pytest.mark.parametrize(("platform", "chat_id", "problem"), [
    ("slack", "C0OPS1234", None),
    ("slack", "G0PRIVATE1", None),
    ("slack", "U0ANN1234", "names a user or a direct message"),
    ("slack", "W0ENTERPR1", "names a user or a direct message"),
    ("slack", "D0ANN1234", "names a user or a direct message"),
    ("slack", "#ops", "is not a Slack channel id"),
    ("slack", "c0ops1234", "is not a Slack channel id"),
    ("feishu", "oc_a0553eda9014c201e6969b478895c230", None),
    ("feishu", "ou_7d8a6e6df7621556ce0d21922b676706", "names a user or a direct message"),
    ("feishu", "on_7d8a6e6df7621556ce0d21922b676706", "names a user or a direct message"),
    ("feishu", "C0OPS1234", "is not a Feishu/Lark chat_id"),
    ("dingtalk", "cid6KeBBLoveMJOGXoYKF5x7EeiodoA==", None),
    ("dingtalk", "cid+a/b=c_d-e", None),
    ("dingtalk", "cid<script>", "is not a DingTalk openConversationId"),
    ("wecom", "opsroom01", None),
    ("wecom", "a" * 32, None),
    ("wecom", "a" * 33, "is not a WeCom appchat chatid"),
    ("wecom", "ops-room", "is not a WeCom appchat chatid"),
    ("teams", "19:0a1b2c3d4e5f@thread.tacv2", None),
    ("teams", "19:meeting_abc@thread.v2", None),
    ("teams", "a:1xyz", "names a user or a direct message"),
    ("teams", "29:1abc", "names a user or a direct message"),
    ("teams", "general", "is not a Teams channel or group chat conversation id"),
    ("telegram", "-100123", "telegram apps cannot post cards to group chats"),
])
def test_chat_id_problem(platform: str, chat_id: str, problem: str | None) -> None:
    found = chat_id_problem(platform, chat_id)
    if problem is None:
        assert found is None
    else:
        assert found is not None and problem in found
