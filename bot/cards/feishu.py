"""Feishu/Lark interactive card, JSON 2.0 (`"schema": "2.0"`), for im/v1 messages and their PATCH.

Docs: https://open.feishu.cn/document/feishu-cards/card-json-v2-structure and
https://open.feishu.cn/document/feishu-cards/card-callback-communication. JSON 2.0 cards only call
back through the new `card.action.trigger` event, so that is the event the adapter listens to;
2.0 rejects unknown properties, so this module emits only documented ones.

Callbacks (`event.action`):
  button        -> `value` = {"action": <packed ActionData>}
  snooze select -> `option` = a full ``snz:<id>:<minutes>`` payload
  comment form  -> `value` = {"action": "cmt:<id>"}, `form_value` = {"comment": <text>}
  custom action -> a button's `value` = {"action": "cst:<id>:<action id>"}, or the "More actions…" select's
                   `option` = the same payload
  Timeline      -> `value` = {"action": "tl:<id>"}; the callback answers with this card showing a timeline
                   section (`card.timeline`, newest first). The card is shared (`update_multi`), so the section
                   shows for the chat until the next update of the card re-renders it without one.
"""

from __future__ import annotations

import json
from typing import Any

from bot.cards.format import cut, labels_line, md_url, minutes_label, names, summary, utc_text
from bot.cards.model import ACTION_EMPHASIS, ACTION_LABELS, Emphasis, IncidentCard, Tone
from bot.chat.actions import Action, pack_for
from core.escaping import lark_md as _esc
from core.types import Platform

PLATFORM = Platform.FEISHU
MAX_CARD_BYTES = 30 * 1024
MAX_TITLE = 200
MAX_COMMENT = 1000  # input max_length upper bound
COMMENT_FORM = "vigil_comment"
COMMENT_FIELD = "comment"
CUSTOM_BUTTONS = 3  # custom actions drawn as buttons; the rest go into a "More actions…" select
MAX_IMAGES_BYTES = 1024  # the image links' section: a card with every field at its bound stays < 30 KB
MAX_TIMELINE_LINE = 200  # characters of an entry's text and of its note in the timeline section
MAX_FIELDS_BYTES = 512  # the custom field values' section
MAX_FIELD_SELECTS_BYTES = 5 * 1024  # the custom field selects, none beside a timeline: the card stays < 30 KB
MAX_FIELD_OPTION = 40
MAX_TIMELINE_BYTES = 6 * 1024  # the timeline section's budget: a card with every field at its bound stays < 30 KB

TEMPLATE = {Tone.DANGER: "red", Tone.WARNING: "orange", Tone.INFO: "blue", Tone.SUCCESS: "green"}
_BUTTON_TYPE = {Emphasis.PRIMARY: "primary_filled", Emphasis.DANGER: "danger", Emphasis.DEFAULT: "default"}


def render(card: IncidentCard) -> dict[str, Any]:
    """Build the card JSON (the caller json-encodes it into the message `content`)."""
    sev, prog = card.severity_look, card.progress_look
    header: dict[str, Any] = {
        "title": _plain(cut(f"#{card.num} {card.title}", MAX_TITLE)),
        "template": TEMPLATE[card.tone],
        "text_tag_list": [_tag(sev.label, TEMPLATE[sev.tone]), _tag(prog.label, TEMPLATE[prog.tone])],
    }
    if card.channel_name:
        header["subtitle"] = _plain(cut(card.channel_name, MAX_TITLE))
    elements: list[dict[str, Any]] = [{"tag": "markdown", "content": _facts(card)}]
    if card.description:
        elements.append({"tag": "markdown", "content": _esc(card.description)})
    if card.labels:
        # No `code` span around labels: escapes inside one would show as written.
        elements.append({"tag": "markdown", "content": labels_line(card, escape=_esc)})
    images = _images(card)
    if images:
        elements.append({"tag": "markdown", "content": images})
    controls = _controls(card)
    if controls:
        elements.append({"tag": "hr"})
        elements.append({"tag": "column_set", "flex_mode": "flow", "horizontal_spacing": "small",
                         "columns": [{"tag": "column", "width": "auto", "elements": [c]} for c in controls]})
    if Action.COMMENT in card.buttons:
        elements.append(_comment_form(card))
    elements += _custom_fields(card)
    more = _more(card)
    if more:
        elements.append({"tag": "column_set", "flex_mode": "flow", "horizontal_spacing": "small",
                         "columns": [{"tag": "column", "width": "auto", "elements": [c]} for c in more]})
    if card.timeline:
        elements.append({"tag": "hr"})
        elements.append({"tag": "markdown", "content": _timeline(card)})
    footer = f"[Open incident #{card.num}]({card.url}) · Updated {utc_text(card.updated_at)}"
    elements.append({"tag": "markdown", "content": footer, "text_size": "notation"})
    return {
        "schema": "2.0",
        "config": {"update_multi": True, "summary": {"content": summary(card)}},
        "card_link": {"url": card.url},
        "header": header,
        "body": {"elements": elements},
    }


def _custom_fields(card: IncidentCard) -> list[dict[str, Any]]:
    """The custom field values, then a select_static for each single-select field a responder may set, whose
    option values are full ``fld:<id>:<field id>:<position>`` payloads, as far as their budgets go (a select is
    drawn with all its options or not at all; the incident page sets the rest)."""
    lines, used = [], 0
    for f in card.fields:
        line = f"**{_esc(f.label)}:** {_esc(f.text)}"
        used += len(line.encode()) + 1
        if used > MAX_FIELDS_BYTES:
            break
        lines.append(line)
    out: list[dict[str, Any]] = [{"tag": "markdown", "content": "\n".join(lines)}] if lines else []
    used = 0
    for f in () if card.timeline else card.field_inputs:
        if f.kind != "single_select":
            continue
        options = [{"text": _plain(cut(o, MAX_FIELD_OPTION)),
                    "value": pack_for(PLATFORM, Action.SET_FIELD, card.incident_id, field_id=f.field_id, option=i)}
                   for i, o in enumerate(f.options)]
        select: dict[str, Any] = {"tag": "select_static", "placeholder": _plain(cut(f"{f.label}…", MAX_FIELD_OPTION)),
                                  "options": options}
        if f.chosen:
            select["initial_option"] = options[f.chosen[0]]["value"]
        used += len(json.dumps(select, ensure_ascii=False).encode())
        if used > MAX_FIELD_SELECTS_BYTES:
            break
        out.append(select)
    return out


def _facts(card: IncidentCard) -> str:
    sev, prog = card.severity_look, card.progress_look
    lines = [
        f"**Severity:** {sev.emoji} {sev.label}",
        f"**Progress:** {prog.emoji} {prog.label}",
        f"**Channel:** {_esc(card.channel_name or '—')}",
        f"**Alerts:** {card.alert_count}",
        f"**Responders:** {_esc(names(card.responders))}",
        f"**Acknowledged by:** {_esc(names(card.acknowledged_by))}",
    ]
    if card.snoozed_until is not None:
        lines.append(f"**Snoozed until:** {utc_text(card.snoozed_until)}")
    if card.last_action:
        lines.append(f"**Last action:** {_esc(card.last_action)}")
    return "\n".join(lines)


def _images(card: IncidentCard) -> str:
    # A Feishu card shows an image only by img_key (an upload to Feishu's image API first), never by URL: each
    # image is a link to its src, and to its href when it has one.
    lines, size = [], 0
    for image in card.images:
        line = f"[Image: {_esc(image.alt or 'alert image')}]({md_url(image.src)})" + (
            f" · [Open link]({md_url(image.href)})" if image.href else "")
        size += len(line.encode()) + 1
        if size > MAX_IMAGES_BYTES:  # escaped alt text and encoded URLs grow; the card must stay < 30 KB
            break
        lines.append(line)
    return "\n".join(lines)


def _controls(card: IncidentCard) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for action in card.buttons:
        if action is Action.COMMENT:
            continue  # drawn as a form below the buttons
        if action is Action.SNOOZE:
            out.append({
                "tag": "select_static",
                "placeholder": _plain("Snooze…"),
                "options": [{"text": _plain(minutes_label(m)),
                             "value": pack_for(PLATFORM, action, card.incident_id, minutes=m)}
                            for m in card.snooze_choices],
            })
            continue
        out.append(_button(ACTION_LABELS[action], ACTION_EMPHASIS.get(action, Emphasis.DEFAULT),
                           pack_for(PLATFORM, action, card.incident_id)))
    return out


def _more(card: IncidentCard) -> list[dict[str, Any]]:
    out = [_button(cut(c.name, MAX_TITLE), Emphasis.DEFAULT,
                   pack_for(PLATFORM, Action.CUSTOM, card.incident_id, action_id=c.id))
           for c in card.custom_actions[:CUSTOM_BUTTONS]]
    rest = card.custom_actions[CUSTOM_BUTTONS:]
    if rest:
        out.append({"tag": "select_static", "placeholder": _plain("More actions…"),
                    "options": [{"text": _plain(cut(c.name, MAX_TITLE)),
                                 "value": pack_for(PLATFORM, Action.CUSTOM, card.incident_id, action_id=c.id)}
                                for c in rest]})
    if card.timeline_button:
        out.append(_button(ACTION_LABELS[Action.TIMELINE], Emphasis.DEFAULT,
                           pack_for(PLATFORM, Action.TIMELINE, card.incident_id)))
    return out


def _timeline(card: IncidentCard) -> str:
    lines, size = [], 0
    for line in card.timeline:
        text = f"- {utc_text(line.at)}: {_esc(cut(line.text, MAX_TIMELINE_LINE))}" + (
            f": {_esc(cut(line.note, MAX_TIMELINE_LINE))}" if line.note else "")
        size += len(text.encode())
        if size > MAX_TIMELINE_BYTES:  # escaped alert text can grow several times over; the card must stay < 30 KB
            break
        lines.append(text)
    head = f"**{ACTION_LABELS[Action.TIMELINE]}** (latest {len(lines)}, newest first)"
    return "\n".join([head, *lines, f"[The whole timeline]({card.url}#timeline)"])


def _comment_form(card: IncidentCard) -> dict[str, Any]:
    submit = _button(ACTION_LABELS[Action.COMMENT], Emphasis.DEFAULT,
                     pack_for(PLATFORM, Action.COMMENT, card.incident_id))
    submit |= {"name": f"{COMMENT_FORM}_submit", "form_action_type": "submit"}
    return {"tag": "form", "name": COMMENT_FORM, "elements": [
        {"tag": "input", "name": COMMENT_FIELD, "input_type": "multiline_text", "max_length": MAX_COMMENT,
         "required": True, "placeholder": _plain("Add a comment")},
        submit,
    ]}


def _button(label: str, emphasis: Emphasis, packed: str) -> dict[str, Any]:
    return {"tag": "button", "text": _plain(label), "type": _BUTTON_TYPE[emphasis],
            "behaviors": [{"type": "callback", "value": {"action": packed}}]}


def _plain(text: str) -> dict[str, str]:
    return {"tag": "plain_text", "content": text}


def _tag(text: str, colour: str) -> dict[str, Any]:
    return {"tag": "text_tag", "text": _plain(text), "color": colour}
