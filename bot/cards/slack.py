"""Slack Block Kit message for an incident: a colour-bar attachment holding the blocks, plus `text`.

Docs: https://api.slack.com/reference/block-kit/blocks (limits per block type),
https://api.slack.com/reference/messaging/attachments (colour bar).

Stable action_ids (the Slack adapter routes on them; do not rename):
  ``vigil.<action>`` for buttons, e.g. ``vigil.ack``; value = packed `ActionData`.
  ``vigil.snooze`` is a static_select; each option value is a full ``snz:<id>:<minutes>`` payload.
  ``vigil.reassign`` and ``vigil.comment`` are buttons that should open a modal (see OPENS_MODAL).
  ``vigil.custom.<action id>`` are the channel's custom-action buttons (action_ids are unique per block), and
  ``vigil.custom`` the "More actions…" static_select holding the rest; each value is a ``cst:<id>:<action id>``.
  ``vigil.timeline`` opens a modal listing the latest timeline entries (`timeline_modal`).
  ``vigil.set_field`` is a custom field's static_select, multi_static_select or checkboxes, alone in an actions
  block whose block_id is ``vigil.field:`` + ``fld:<id>:<field id>:``; option values are positions in the
  field's options, and every chosen one arrives (none: the field is cleared).
"""

from __future__ import annotations

import re
from typing import Any

from bot.cards.format import cut, headline, labels_line, minutes_label, names, summary, utc_text
from bot.cards.model import ACTION_EMPHASIS, ACTION_LABELS, Emphasis, IncidentCard
from bot.chat.actions import Action, pack_for
from core.escaping import slack_mrkdwn as _esc
from core.types import Platform

PLATFORM = Platform.SLACK
ACTION_IDS: dict[Action, str] = {a: f"vigil.{a.value}" for a in Action}
OPENS_MODAL = frozenset({Action.REASSIGN, Action.COMMENT})
BLOCK_ID_ACTIONS = "vigil.actions"
FIELD_BLOCK = "vigil.field:"  # + a custom field's SetField payload without an option (block_id, 255 chars)
BLOCK_ID_MORE = "vigil.more"  # custom actions and the Timeline button, under the lifecycle buttons
CUSTOM_BUTTONS = 3  # custom actions drawn as buttons; the rest go into the "More actions…" select
MAX_OPTIONS = 100
MAX_OPTION_TEXT = 75
MAX_MODAL_TITLE = 24
MAX_MODAL_BLOCKS = 100

MAX_BLOCKS = 50
MAX_HEADER = 150
MAX_SECTION_TEXT = 3000
MAX_FIELD_TEXT = 2000
MAX_FIELDS = 10
MAX_BUTTON_TEXT = 75
MAX_ACTION_ELEMENTS = 25
MAX_FALLBACK = 3000
MAX_IMAGE_TITLE = 2000

_STYLE = {Emphasis.PRIMARY: "primary", Emphasis.DANGER: "danger"}
_PARTIAL_ENTITY = re.compile(r"&[a-z]{0,3}$")


def render(card: IncidentCard) -> dict[str, Any]:
    """Build the chat.postMessage / chat.update body (without channel and ts)."""
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": _plain(headline(card, limit=MAX_HEADER))},
        {"type": "section", "fields": _fields(card)},
    ]
    if card.description:
        blocks.append({"type": "section", "text": _md(card.description)})
    if card.labels:
        blocks.append({"type": "section", "text": _md(labels_line(card, sep="  ", fmt="`{k}={v}`"))})
    blocks += _images(card)
    elements = _elements(card)
    if elements:
        blocks.append({"type": "actions", "block_id": BLOCK_ID_ACTIONS, "elements": elements[:MAX_ACTION_ELEMENTS]})
    more = _more(card)
    if more:
        blocks.append({"type": "actions", "block_id": BLOCK_ID_MORE, "elements": more})
    blocks += _custom_fields(card)
    if card.last_action:
        blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": _esc(card.last_action)}]})
    footer = f"<{card.url}|Open incident #{_esc(card.num)}> · Updated {_date(card.updated_at)}"
    blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": footer}]})
    # Slack reads `text` (the notification and the screen-reader line) as mrkdwn too: <!channel> would ping.
    text = summary(card, limit=MAX_FALLBACK, escape=_esc)
    return {"text": text, "attachments": [{"color": card.colour, "fallback": text, "blocks": blocks[:MAX_BLOCKS]}]}


def _images(card: IncidentCard) -> list[dict[str, Any]]:
    # An image block cannot link anywhere: the images' links follow in one context line.
    out: list[dict[str, Any]] = []
    for image in card.images:
        block: dict[str, Any] = {"type": "image", "image_url": image.src, "alt_text": image.alt or "Alert image"}
        if image.alt:
            block["title"] = _plain(cut(image.alt, MAX_IMAGE_TITLE))
        out.append(block)
    links = [f"<{i.href}|{_esc(i.alt or 'Image')}>" for i in card.images if i.href]
    if links:
        out.append({"type": "context", "elements": [{"type": "mrkdwn", "text": "Image links: " + " · ".join(links)}]})
    return out


def _custom_fields(card: IncidentCard) -> list[dict[str, Any]]:
    """The custom field values, then one actions block per field a responder may set here."""
    out: list[dict[str, Any]] = []
    if card.fields:
        out.append({"type": "section", "fields": [
            {"type": "mrkdwn", "text": cut(f"*{_esc(f.label)}*\n{_esc(f.text)}", MAX_FIELD_TEXT)}
            for f in card.fields[:MAX_FIELDS]]})
    for f in card.field_inputs:
        options = [{"text": _plain(cut(o, MAX_OPTION_TEXT)), "value": str(i)}
                   for i, o in enumerate(f.options[:MAX_OPTIONS])]
        chosen = [options[i] for i in f.chosen if i < len(options)]
        element: dict[str, Any] = {"action_id": ACTION_IDS[Action.SET_FIELD], "options": options}
        if f.kind == "checkbox":
            element["type"] = "checkboxes"
        else:
            element["type"] = "static_select" if f.kind == "single_select" else "multi_static_select"
            element["placeholder"] = _plain(cut(f"{f.label}…", MAX_OPTION_TEXT))
        if chosen and f.kind == "single_select":
            element["initial_option"] = chosen[0]
        elif chosen:
            element["initial_options"] = chosen
        base = pack_for(PLATFORM, Action.SET_FIELD, card.incident_id, field_id=f.field_id)
        out.append({"type": "actions", "block_id": FIELD_BLOCK + base, "elements": [element]})
    return out


def without_images(message: dict[str, Any]) -> dict[str, Any] | None:
    """`message` (a rendered card) with each image block turned into a link to its image, or None when it has
    none. Slack downloads every image_url before it accepts a message and refuses the whole message
    (`invalid_blocks`: "downloading image failed") when one cannot be fetched, e.g. a Grafana on the
    intranet: the adapter then sends this instead, and the page still gets through."""
    found = False

    def swap(blocks: list[dict[str, Any]]) -> list[dict[str, Any]]:
        nonlocal found
        out = []
        for block in blocks:
            if block.get("type") == "image":
                found = True
                text = f"<{block['image_url']}|Image: {_esc(block.get('alt_text') or 'alert image')}>"
                block = {"type": "context", "elements": [{"type": "mrkdwn", "text": text}]}
            out.append(block)
        return out

    swapped = {**message, "attachments": [{**a, "blocks": swap(a.get("blocks") or [])}
                                          for a in message.get("attachments") or []]}
    if "blocks" in message:
        swapped["blocks"] = swap(message["blocks"])
    if "attachments" not in message:
        del swapped["attachments"]
    return swapped if found else None


def _fields(card: IncidentCard) -> list[dict[str, str]]:
    sev, prog = card.severity_look, card.progress_look
    rows = [
        ("Severity", f"{sev.emoji} {sev.label}"),
        ("Progress", f"{prog.emoji} {prog.label}"),
        ("Channel", _esc(card.channel_name or "—")),
        ("Alerts", str(card.alert_count)),
        ("Responders", _esc(names(card.responders))),
        ("Acknowledged by", _esc(names(card.acknowledged_by))),
    ]
    if card.snoozed_until is not None:
        rows.append(("Snoozed until", _date(card.snoozed_until)))
    return [{"type": "mrkdwn", "text": cut(f"*{k}*\n{v}", MAX_FIELD_TEXT)} for k, v in rows[:MAX_FIELDS]]


def _elements(card: IncidentCard) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for action in card.buttons:
        if action is Action.SNOOZE:
            out.append({
                "type": "static_select",
                "action_id": ACTION_IDS[action],
                "placeholder": _plain("Snooze…"),
                "options": [
                    {"text": _plain(minutes_label(m)),
                     "value": pack_for(PLATFORM, action, card.incident_id, minutes=m)}
                    for m in card.snooze_choices
                ],
            })
            continue
        button: dict[str, Any] = {
            "type": "button",
            "action_id": ACTION_IDS[action],
            "text": _plain(cut(ACTION_LABELS[action] + ("…" if action in OPENS_MODAL else ""), MAX_BUTTON_TEXT)),
            "value": pack_for(PLATFORM, action, card.incident_id),
        }
        style = _STYLE.get(ACTION_EMPHASIS.get(action, Emphasis.DEFAULT))
        if style:
            button["style"] = style
        out.append(button)
    return out


def _more(card: IncidentCard) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = [
        {"type": "button", "action_id": f"{ACTION_IDS[Action.CUSTOM]}.{c.id}", "text": _plain(cut(c.name, MAX_BUTTON_TEXT)),
         "value": pack_for(PLATFORM, Action.CUSTOM, card.incident_id, action_id=c.id)}
        for c in card.custom_actions[:CUSTOM_BUTTONS]]
    rest = card.custom_actions[CUSTOM_BUTTONS:MAX_OPTIONS + CUSTOM_BUTTONS]
    if rest:
        out.append({"type": "static_select", "action_id": ACTION_IDS[Action.CUSTOM],
                    "placeholder": _plain("More actions…"),
                    "options": [{"text": _plain(cut(c.name, MAX_OPTION_TEXT)),
                                 "value": pack_for(PLATFORM, Action.CUSTOM, card.incident_id, action_id=c.id)}
                                for c in rest]})
    if card.timeline_button:
        out.append({"type": "button", "action_id": ACTION_IDS[Action.TIMELINE],
                    "text": _plain(ACTION_LABELS[Action.TIMELINE]),
                    "value": pack_for(PLATFORM, Action.TIMELINE, card.incident_id)})
    return out


def timeline_modal(card: IncidentCard) -> dict[str, Any]:
    """The modal (views.open) a Timeline click opens: the card's latest timeline entries, newest first."""
    blocks: list[dict[str, Any]] = [{"type": "section", "text": _md(headline(card, limit=MAX_HEADER))}]
    for line in card.timeline:
        text = f"*{_esc(line.text)}*" + (f"\n{_esc(line.note)}" if line.note else "")
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": cut(text, MAX_SECTION_TEXT)}})
        blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": _date(line.at)}]})
    if not card.timeline:
        blocks.append({"type": "section", "text": _md("Nothing on the timeline yet.")})
    blocks.append({"type": "context", "elements": [
        {"type": "mrkdwn", "text": f"<{card.url}#timeline|The whole timeline on the incident page>"}]})
    return {"type": "modal", "title": _plain(cut(f"Timeline #{card.num}", MAX_MODAL_TITLE)),
            "close": _plain("Close"), "blocks": blocks[:MAX_MODAL_BLOCKS]}


def _plain(text: str) -> dict[str, Any]:
    return {"type": "plain_text", "text": text, "emoji": True}


def _md(text: str) -> dict[str, str]:
    body = _esc(text)
    if len(body) > MAX_SECTION_TEXT:
        # Cut after escaping so the limit holds, without leaving half an entity like "&am".
        body = _PARTIAL_ENTITY.sub("", body[: MAX_SECTION_TEXT - 1]) + "…"
    return {"type": "mrkdwn", "text": body}


def _date(moment: Any) -> str:
    return f"<!date^{int(moment.timestamp())}^{{date_short_pretty}} {{time}}|{utc_text(moment)}>"
