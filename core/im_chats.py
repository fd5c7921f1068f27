"""Which group-chat ids each chat platform takes, for an escalation level's `im_chats` (pure; table-tested).

Caught when the rule is saved, not at 3 a.m.: a member's id where a group chat belongs (Slack U..., Feishu
ou_...), or an id no such platform issues. Only the shapes the platforms document are checked; whether the
app's bot is in the chat is the platform's answer to the first post (a failed delivery, on the timeline).
"""

from __future__ import annotations

import re

_SHAPES: dict[str, tuple[re.Pattern[str], str]] = {
    # C... public, G... private channels and multi-person DMs; D... is a direct message, U.../W... a user.
    "slack": (re.compile(r"^[CG][A-Z0-9]{6,}$"), "a Slack channel id (C... or G...)"),
    "feishu": (re.compile(r"^oc_[A-Za-z0-9]+$"), "a Feishu/Lark chat_id (oc_...)"),
    "dingtalk": (re.compile(r"^[A-Za-z0-9+/=_-]+$"), "a DingTalk openConversationId (cid...)"),
    # appchat/create: "only 0-9 and a-zA-Z, at most 32 characters".
    "wecom": (re.compile(r"^[A-Za-z0-9]{1,32}$"), "a WeCom appchat chatid (letters and digits, at most 32)"),
    # 19:...@thread.tacv2 (a channel), 19:...@thread.v2 (a group chat); a 1:1 chat is a:... or 8:...
    "teams": (re.compile(r"^19:\S+$"), "a Teams channel or group chat conversation id (19:...)"),
}

_USERS: dict[str, tuple[str, ...]] = {"slack": ("U", "W", "D"), "feishu": ("ou_", "on_"), "teams": ("29:", "a:", "8:")}


def chat_id_problem(platform: str, chat_id: str) -> str | None:
    """Why `chat_id` is no group chat of `platform` (None: it looks like one)."""
    shape = _SHAPES.get(platform)
    if shape is None:
        return f"{platform} apps cannot post cards to group chats"
    if chat_id.startswith(_USERS.get(platform, ())):
        return f"{chat_id!r} names a user or a direct message, not a group chat: give {shape[1]}"
    if not shape[0].match(chat_id):
        return f"{chat_id!r} is not {shape[1]}"
    return None
