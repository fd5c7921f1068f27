"""What a command message says, on every platform (pure): `oncall`, `mine`, `help`, `page @someone <title>`,
and the incident actions a card offers (`ack 12`, `snooze 12 30`, `comment 12 <text>`).

Each adapter reads its platform's message into words with the mentions taken out, plus the platform user ids
mentioned (bot.adapters.base.ChatMessage; Slack's `/vigil` text likewise). `to_command` turns that into a
read-only Query or `page` (answered by bot/chat/commands.py), an ActionEvent for the click path
(bot/chat/clicks.py), or the words of a reply (help, or "I did not understand").
"""

from __future__ import annotations

from collections.abc import Callable

from bot.adapters.base import ActionEvent, ChatMessage
from bot.chat.actions import Action, ActionData, ActionPayloadError
from bot.chat.commands import PAGE, QUERIES, Query, help_text

HELP = "help"
# The incident actions a command may name, as the card's buttons do.
ACTIONS = {"ack": Action.ACK, "unack": Action.UNACK, "close": Action.CLOSE, "reopen": Action.REOPEN,
           "escalate": Action.ESCALATE, "wake": Action.WAKE, "snooze": Action.SNOOZE, "comment": Action.COMMENT}
ECHOED = 100  # how much of a message that was not understood is quoted back


def command_payload(text: str) -> tuple[Action, str, str] | None:
    """`ack 12` -> (ACK, "ack:12", ""); `comment 12 disk full` -> (COMMENT, "cmt:12", "disk full"); else None."""
    words = text.split(maxsplit=2)
    if len(words) < 2 or words[0].lower() not in ACTIONS or not words[1].lstrip("#").isdigit():
        return None
    action, rest = ACTIONS[words[0].lower()], words[2].strip() if len(words) > 2 else ""
    fields: dict[str, int | None] = {}
    if action is Action.SNOOZE:
        if rest and not rest.isdigit():
            return None
        fields["minutes"] = int(rest or 60)
    elif action is not Action.COMMENT and rest:
        return None
    try:
        return action, ActionData.for_action(action, int(words[1].lstrip("#")), **fields).pack(), rest
    except (ActionPayloadError, ValueError):
        return None


def not_understood(text: str, prefix: str = "", quote: Callable[[str], str] = str) -> str:
    """The answer to words that are no command: the command list, after a quote of them (escaped by `quote`
    for the platform's markup) unless they were empty or `help`."""
    usage = help_text(prefix)
    if not text.strip() or text.strip().lower() == HELP:
        return usage
    return f"I did not understand `{quote(text.strip()[:ECHOED])}`.\n{usage}"


def to_command(message: ChatMessage) -> Query | ActionEvent | str:
    """A message to the bot as a Query (`oncall`, `mine`, `page ...`), a click (`ack 12`...), or the text to
    answer with (help, or what was not understood)."""
    words = message.words.split(maxsplit=1)
    name = words[0].lower() if words else ""
    rest = words[1].strip() if len(words) > 1 else ""
    if name == PAGE:
        return Query(message.platform, message.im_user_id, PAGE, rest, message.mentions, message.mentions_by_name)
    if name in QUERIES and not rest:
        return Query(message.platform, message.im_user_id, name)
    payload = command_payload(message.words)
    if payload is not None:
        action, packed, text = payload
        inputs = {"comment": text} if action is Action.COMMENT else {}
        return ActionEvent(message.platform, message.im_user_id, packed, inputs, dict(message.context))
    return not_understood(message.words)
