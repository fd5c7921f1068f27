"""DingTalk interactive card data for the card-instance API (`/v1.0/card/instances` + `/deliver`).

Docs: https://open.dingtalk.com/document/orgapp/interface-for-creating-a-card-instance and
https://open.dingtalk.com/document/orgapp/event-callback-card. A DingTalk card is a template built
in the card builder plus `cardData.cardParamMap`, whose values are strings (lists are JSON-encoded),
so this renderer returns only `{"cardData": {"cardParamMap": ...}}`; the adapter adds
`cardTemplateId`, `outTrackId`, `callbackType: "STREAM"` and the open-space fields.

The Vigil template binds the variables in VARIABLES. `btns` and `snooze_btns` are button lists
(`{text, color, status, event: {type: "sendCardRequest", params: {actionId, params}}}`); a click
reaches dingtalk-stream's card callback (topic `/v1.0/card/instances/callback`) as
`content.cardPrivateData = {"actionIds": [<packed>], "params": {"action": <packed>}}`.
The channel's custom actions follow in `btns` as the same callback buttons (``cst:<id>:<action id>``), at most
CUSTOM_BUTTONS and then a "More…" link to the incident page; the Timeline button links to the page's timeline
(a DingTalk card callback cannot open a view for the clicker alone).
"""

from __future__ import annotations

import json
from typing import Any

from bot.cards.format import cut, headline, labels_line, md_url, minutes_label, names, summary, utc_text
from bot.cards.model import ACTION_EMPHASIS, ACTION_LABELS, Emphasis, IncidentCard
from bot.chat.actions import Action, pack_for
from core.escaping import dingtalk_markdown as _esc
from core.types import Platform

PLATFORM = Platform.DINGTALK
MAX_TITLE = 200
MAX_PARAM = 3000  # own cap per text variable; DingTalk documents no per-variable limit
MAX_CARD_BYTES = 30 * 1024  # own cap for the whole cardParamMap
MAX_FIELDS_BYTES = 1024  # the custom field values' lines in `markdown`: the card stays < 30 KB
MAX_IMAGES_BYTES = 4 * 1024  # the images' lines in `markdown`
VARIABLES = ("title", "summary", "severity", "severity_emoji", "progress", "progress_emoji", "tone", "color",
             "channel", "responders", "acknowledged_by", "alert_count", "labels", "description", "url",
             "snoozed_until", "updated_at", "markdown", "btns", "snooze_btns")

_COLOUR = {Emphasis.PRIMARY: "blue", Emphasis.DEFAULT: "gray", Emphasis.DANGER: "red"}
# Actions that need text or a member picker, which a DingTalk card cannot collect; the incident page can.
_PAGE_ONLY = frozenset({Action.COMMENT, Action.REASSIGN})
CUSTOM_BUTTONS = 4


def render(card: IncidentCard) -> dict[str, Any]:
    """Build `cardData` for creating or updating (`PUT /v1.0/card/instances`) the card."""
    sev, prog = card.severity_look, card.progress_look
    params = {
        "title": headline(card, limit=MAX_TITLE),
        "summary": summary(card),
        "severity": sev.label,
        "severity_emoji": sev.emoji,
        "progress": prog.label,
        "progress_emoji": prog.emoji,
        "tone": card.tone.value,  # danger | warning | info | success
        "color": card.colour,
        "channel": cut(card.channel_name, MAX_TITLE),
        "responders": names(card.responders),
        "acknowledged_by": names(card.acknowledged_by),
        "alert_count": str(card.alert_count),
        "labels": cut(labels_line(card), MAX_PARAM),
        "description": cut(card.description, MAX_PARAM),
        "url": card.url,
        "snoozed_until": utc_text(card.snoozed_until) if card.snoozed_until else "",
        "updated_at": utc_text(card.updated_at),
        "markdown": _markdown(card),
        "btns": _json(_buttons(card)),
        "snooze_btns": _json(_snooze_buttons(card)),
    }
    return {"cardData": {"cardParamMap": params}}


def _markdown(card: IncidentCard) -> str:
    # One body for templates that bind a single markdown variable; alert text in it is escaped. The other
    # variables are plain strings for plain-text components.
    sev, prog = card.severity_look, card.progress_look
    lines = [
        f"**{sev.emoji} {sev.label}** · {prog.emoji} {prog.label}",
        f"**Channel:** {_esc(card.channel_name or '—')}",
        f"**Alerts:** {card.alert_count}",
        f"**Responders:** {_esc(names(card.responders))}",
        f"**Acknowledged by:** {_esc(names(card.acknowledged_by))}",
    ]
    if card.snoozed_until is not None:
        lines.append(f"**Snoozed until:** {utc_text(card.snoozed_until)}")
    if card.last_action:
        lines.append(f"**Last action:** {_esc(card.last_action)}")
    if card.labels:
        lines.append(f"**Labels:** {labels_line(card, escape=_esc)}")
    used = 0
    for f in card.fields:  # shown as far as their budget goes; set from the incident page
        line = f"**{_esc(f.label)}:** {_esc(f.text)}"
        used += len(line.encode()) + 1
        if used > MAX_FIELDS_BYTES:
            break
        lines.append(line)
    if card.description:
        lines.append("")
        lines.append(_esc(cut(card.description, MAX_PARAM)))
    lines += _images(card)
    lines += ["", f"[Open incident #{card.num}]({card.url}) · Updated {utc_text(card.updated_at)}"]
    return "\n".join(lines)


def _images(card: IncidentCard) -> list[str]:
    # DingTalk markdown shows an image by URL; an image inside a link is not documented, so its link follows it.
    out, size = [], 0
    for image in card.images:
        alt = _esc((image.alt or "Alert image").replace("[", "［").replace("]", "］"))  # brackets would end the alt
        lines = ["", f"![{alt}]({md_url(image.src)})"] + ([f"[Open link]({md_url(image.href)})"] if image.href else [])
        size += sum(len(line.encode()) + 1 for line in lines)
        if size > MAX_IMAGES_BYTES:  # escaped alt text and encoded URLs grow; the card must stay < 30 KB
            break
        out += lines
    return out


def _buttons(card: IncidentCard) -> list[dict[str, Any]]:
    out = []
    for action in card.buttons:
        if action is Action.SNOOZE or action in _PAGE_ONLY:
            continue
        emphasis = ACTION_EMPHASIS.get(action, Emphasis.DEFAULT)
        out.append(_button(ACTION_LABELS[action], emphasis, pack_for(PLATFORM, action, card.incident_id)))
    for action in (a for a in card.buttons if a in _PAGE_ONLY):
        out.append(_link(ACTION_LABELS[action] + "…", card.url))
    out += [_button(cut(c.name, MAX_TITLE), Emphasis.DEFAULT,
                    pack_for(PLATFORM, Action.CUSTOM, card.incident_id, action_id=c.id))
            for c in card.custom_actions[:CUSTOM_BUTTONS]]
    if len(card.custom_actions) > CUSTOM_BUTTONS:
        out.append(_link("More…", card.url))
    if card.timeline_button:
        out.append(_link(ACTION_LABELS[Action.TIMELINE], f"{card.url}#timeline"))
    return out


def _link(text: str, url: str) -> dict[str, Any]:
    return {"text": text, "color": "gray", "status": "normal", "event": {"type": "openLink", "params": {"url": url}}}


def _snooze_buttons(card: IncidentCard) -> list[dict[str, Any]]:
    if Action.SNOOZE not in card.buttons:
        return []
    return [_button(f"{ACTION_LABELS[Action.SNOOZE]} {minutes_label(m)}", Emphasis.DEFAULT,
                    pack_for(PLATFORM, Action.SNOOZE, card.incident_id, minutes=m)) for m in card.snooze_choices]


def _button(text: str, emphasis: Emphasis, packed: str) -> dict[str, Any]:
    return {"text": text, "color": _COLOUR[emphasis], "status": "normal",
            "event": {"type": "sendCardRequest", "params": {"actionId": packed, "params": {"action": packed}}}}


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))

