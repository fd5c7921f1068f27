"""WeCom `template_card` of card_type `button_interaction`, for message/send and update_template_card.

Docs: https://developer.work.weixin.qq.com/document/path/90236 (template card fields and limits),
https://developer.work.weixin.qq.com/document/path/94888 (update_template_card).

Limits honoured: at most 6 buttons, button key <= 1024 bytes, selection option id <= 128 bytes and
at most 10 options, horizontal_content_list <= 6 rows, task_id <= 128 bytes of [A-Za-z0-9_-@].
A click calls back with EventKey = the button key (a packed ActionData) and, for the Snooze
button, SelectedItems[question_key=SNOOZE_QUESTION].OptionIds[0] = a full ``snz:<id>:<minutes>``.
Comment and reassign need input WeCom cards cannot collect; the card itself links to the page.
The channel's custom actions are buttons after the lifecycle ones (key ``cst:<id>:<action id>``); the Timeline
button is a link to the page's timeline (a click on a template card can only update the card). What does not
fit in the 6 buttons goes behind a "More…" link to the incident page. Alert images: a button_interaction card
has no image slot (`card_image` is news_notice's), so each is a link row (`type` 1) in the rows left of the six.
"""

from __future__ import annotations

from typing import Any

from bot.cards.format import cut, labels_line, minutes_label, names, utc_text
from bot.cards.model import ACTION_EMPHASIS, ACTION_LABELS, Emphasis, IncidentCard, Tone
from bot.chat.actions import Action, Snooze, pack_for
from core.types import Platform

PLATFORM = Platform.WECOM
MAX_BUTTONS = 6
MAX_OPTIONS = 10
SNOOZE_QUESTION = "vigil_snooze"
# Suggested lengths from the docs ("建议不超过"); longer text is cut by the client anyway.
MAX_MAIN_TITLE, MAX_MAIN_DESC, MAX_SUB_TITLE, MAX_ROW_VALUE, MAX_QUOTE = 36, 44, 160, 30, 160
MAX_BUTTON_TEXT = 20
MAX_ROWS = 6  # horizontal_content_list

# source.desc_color: 0 grey, 1 black, 2 red, 3 green
DESC_COLOR = {Tone.DANGER: 2, Tone.WARNING: 1, Tone.INFO: 0, Tone.SUCCESS: 3}
# button style 1..4; 1 is the filled accent button, 2 the plain one, 3 the warning-coloured one
_STYLE = {Emphasis.PRIMARY: 1, Emphasis.DEFAULT: 2, Emphasis.DANGER: 3}
_PAGE_ONLY = frozenset({Action.COMMENT, Action.REASSIGN})


def render(card: IncidentCard) -> dict[str, Any]:
    """Build the `template_card` object (the adapter wraps it with touser/agentid/msgtype)."""
    sev, prog = card.severity_look, card.progress_look
    out: dict[str, Any] = {
        "card_type": "button_interaction",
        "source": {"desc": cut(f"Vigil · {card.channel_name}" if card.channel_name else "Vigil", 20),
                   "desc_color": DESC_COLOR[card.tone]},
        "main_title": {"title": cut(f"{sev.emoji} #{card.num} {card.title}", MAX_MAIN_TITLE),
                       "desc": cut(f"{sev.label} · {prog.emoji} {prog.label}", MAX_MAIN_DESC)},
        "horizontal_content_list": _rows(card),
        "card_action": {"type": 1, "url": card.url},
        "task_id": task_id(card),
    }
    if card.description:
        out["quote_area"] = {"type": 1, "url": card.url, "quote_text": cut(card.description, MAX_QUOTE)}
    if card.labels:
        out["sub_title_text"] = cut(labels_line(card), MAX_SUB_TITLE)
    if Action.SNOOZE in card.buttons:
        options = [{"id": pack_for(PLATFORM, Action.SNOOZE, card.incident_id, minutes=m), "text": minutes_label(m)}
                   for m in card.snooze_choices[:MAX_OPTIONS]]
        out["button_selection"] = {"question_key": SNOOZE_QUESTION, "title": ACTION_LABELS[Action.SNOOZE],
                                   "option_list": options, "selected_id": options[0]["id"]}
    out["button_list"] = _buttons(card)
    return out


def task_id(card: IncidentCard) -> str:
    """A task id unique per incident and version, as WeCom forbids reusing one within an app."""
    return f"vigil-{card.incident_id}-{int(card.updated_at.timestamp() * 1000)}"


def _rows(card: IncidentCard) -> list[dict[str, Any]]:
    rows = [
        ("Channel", card.channel_name or "—"),
        ("Alerts", str(card.alert_count)),
        ("Owners", names(card.responders)),
        ("Acked by", names(card.acknowledged_by)),
    ]
    if card.snoozed_until is not None:
        rows.append(("Snoozed", utc_text(card.snoozed_until)))
    if card.last_action:
        rows.append(("Last action", card.last_action))
    rows += [(f.label, f.text) for f in card.fields]  # as room allows; set from the incident page
    out = [{"keyname": k, "value": cut(v, MAX_ROW_VALUE)} for k, v in rows]
    # A button_interaction card has no image slot (card_image is news_notice's): each image is a link row to its
    # src, in the rows left of the six.
    out += [{"type": 1, "keyname": "Image", "value": cut(i.alt or "alert image", MAX_ROW_VALUE), "url": i.src}
            for i in card.images]
    return out[:MAX_ROWS]


def _buttons(card: IncidentCard) -> list[dict[str, Any]]:
    buttons = []
    for action in card.buttons:
        if action in _PAGE_ONLY:
            continue
        if action is Action.SNOOZE:
            # Key carries the first choice; the adapter prefers the selected option's id.
            key = pack_for(PLATFORM, action, card.incident_id, minutes=card.snooze_choices[0])
        else:
            key = pack_for(PLATFORM, action, card.incident_id)
        style = _STYLE[ACTION_EMPHASIS.get(action, Emphasis.DEFAULT)]
        buttons.append({"type": 0, "text": cut(ACTION_LABELS[action], MAX_BUTTON_TEXT), "style": style, "key": key})
    buttons += [{"type": 0, "text": cut(c.name, MAX_BUTTON_TEXT), "style": _STYLE[Emphasis.DEFAULT],
                 "key": pack_for(PLATFORM, Action.CUSTOM, card.incident_id, action_id=c.id)}
                for c in card.custom_actions]
    if card.timeline_button:
        buttons.append(_link(ACTION_LABELS[Action.TIMELINE], f"{card.url}#timeline"))
    if len(buttons) > MAX_BUTTONS:
        kept = buttons[: MAX_BUTTONS - 1]
        snooze = [b for b in buttons if b.get("key", "").startswith(Snooze.prefix + ":")]
        if snooze and snooze[0] not in kept:  # the selection is useless without its button
            kept = kept[:-1] + snooze
        buttons = kept + [_link("More…", card.url)]
    # button_interaction requires at least one button; a link is not an action.
    return buttons or [_link("Open", card.url)]


def _link(text: str, url: str) -> dict[str, Any]:
    return {"type": 1, "text": text, "style": 2, "url": url}
