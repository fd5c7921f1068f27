"""Microsoft Teams Adaptive Card 1.4 with Universal Actions (`Action.Execute`) and a `refresh` block.

Docs: https://learn.microsoft.com/microsoftteams/platform/task-modules-and-cards/cards/universal-actions-for-adaptive-cards/overview
and https://adaptivecards.io/explorer/Action.Execute.html. The bot receives an `adaptiveCard/action`
invoke with `action.verb` = the action name and `action.data` = {"action": <packed ActionData>}
merged with the inputs: `snooze` (a full ``snz:<id>:<minutes>``, preferred over `action`) and
`comment` (the text). Verb "refresh" asks for the current card and changes nothing. A custom field a
responder may set is an input in the body (`fld<field id>`: a ChoiceSet of option positions, comma-joined
when several, or a Toggle whose "on" is position 0) with its own "Set" button, verb "set_field" and data
{"action": "fld:<id>:<field id>:", "field": "fld<field id>"}: the adapter reads that input's value. The channel's custom
actions are `Action.Execute` with verb "custom" and data {"action": "cst:<id>:<action id>"}, after the lifecycle
actions (folded under "More…" with them); the Timeline button opens the incident page's timeline.
"""

from __future__ import annotations

import json
from typing import Any

from bot.cards.format import (
    headline,
    labels_line,
    minutes_label,
    names,
    rfc3339,
    status_line,
    summary,
    utc_text,
)
from bot.cards.model import (
    ACTION_EMPHASIS,
    ACTION_LABELS,
    CardImage,
    Emphasis,
    FieldInput,
    IncidentCard,
    Tone,
)
from bot.chat.actions import Action, pack_for
from core.escaping import teams_markdown as _esc
from core.types import Platform

PLATFORM = Platform.TEAMS
VERSION = "1.4"
MAX_CARD_BYTES = 28 * 1024  # Teams rejects bot messages above ~28 KB
MAX_ACTIONS = 6  # what Teams shows at the top level; the rest go under "More…"
MAX_COMMENT = 1024  # core.incidents.COMMENT_MAX
SNOOZE_INPUT, COMMENT_INPUT = "snooze", "comment"
FIELD_INPUT = "fld"  # + the field's id: one input per field, so each "Set" reads its own
# Custom field inputs take what is left of this much of the card (the rest of it is already bounded),
# each at most this many options of at most this many characters; fields beyond it are set on the page.
FIELD_INPUTS_BYTES = 8 * 1024
MAX_FIELD_OPTIONS, MAX_OPTION_TITLE = 20, 60

CONTAINER_STYLE = {Tone.DANGER: "attention", Tone.WARNING: "warning", Tone.INFO: "accent", Tone.SUCCESS: "good"}
_STYLE = {Emphasis.PRIMARY: "positive", Emphasis.DANGER: "destructive"}


def render(card: IncidentCard) -> dict[str, Any]:
    """Build the Adaptive Card (the adapter wraps it in an attachment of contentType adaptive card)."""
    body: list[dict[str, Any]] = [
        {"type": "Container", "style": CONTAINER_STYLE[card.tone], "bleed": True,
         "selectAction": {"type": "Action.OpenUrl", "url": card.url},
         "items": [_text(headline(card, limit=300, escape=_esc), weight="Bolder", size="Medium"),
                   _text(status_line(card), spacing="None")]},
        {"type": "FactSet", "facts": _facts(card)},
    ]
    if card.description:
        body.append(_text(_esc(card.description)))
    if card.labels:
        # No `code` span: Adaptive Cards do not read one, and escapes inside one would show as written.
        body.append(_text(labels_line(card, sep="  ", escape=_esc), size="Small"))
    body += [_image(i) for i in card.images]
    body += _field_inputs(card)
    when = rfc3339(card.updated_at)
    body.append(_text(f"[Open incident #{card.num}]({card.url}) · Updated {{{{DATE({when}, SHORT)}}}} "
                      f"{{{{TIME({when})}}}}", size="Small", isSubtle=True))
    return {
        "type": "AdaptiveCard",
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "version": VERSION,
        "fallbackText": summary(card),
        "msteams": {"width": "Full"},
        "refresh": {"action": _execute(Action.REFRESH, pack_for(PLATFORM, Action.REFRESH, card.incident_id)),
                    "userIds": []},
        "body": body,
        "actions": _actions(card),
    }


def _facts(card: IncidentCard) -> list[dict[str, str]]:
    facts = [
        ("Channel", _esc(card.channel_name or "—")),
        ("Alerts", str(card.alert_count)),
        ("Responders", _esc(names(card.responders))),
        ("Acknowledged by", _esc(names(card.acknowledged_by))),
    ]  # Teams reads markdown in fact values too
    if card.snoozed_until is not None:  # DATE()/TIME() are only documented for TextBlock, not FactSet
        facts.append(("Snoozed until", utc_text(card.snoozed_until)))
    if card.last_action:
        facts.append(("Last action", _esc(card.last_action)))
    facts += [(_esc(f.label), _esc(f.text)) for f in card.fields]  # set from the incident page
    return [{"title": k, "value": v} for k, v in facts]


def _actions(card: IncidentCard) -> list[dict[str, Any]]:
    simple: list[dict[str, Any]] = []
    forms: list[dict[str, Any]] = []
    for action in card.buttons:
        if action is Action.SNOOZE:
            forms.append(_snooze(card))
        elif action is Action.COMMENT:
            forms.append(_show(ACTION_LABELS[action], [
                {"type": "Input.Text", "id": COMMENT_INPUT, "isMultiline": True, "maxLength": MAX_COMMENT,
                 "isRequired": True, "errorMessage": "Write a comment first", "placeholder": "Add a comment"}],
                [_execute(action, pack_for(PLATFORM, action, card.incident_id))]))
        else:
            simple.append(_execute(action, pack_for(PLATFORM, action, card.incident_id)))
    simple += [_execute(Action.CUSTOM, pack_for(PLATFORM, Action.CUSTOM, card.incident_id, action_id=c.id), c.name)
               for c in card.custom_actions]
    if card.timeline_button:
        simple.append({"type": "Action.OpenUrl", "title": ACTION_LABELS[Action.TIMELINE],
                       "url": f"{card.url}#timeline"})
    if len(simple) + len(forms) <= MAX_ACTIONS:
        return simple + forms
    # Keep ShowCards at the top (no nested ShowCards) and fold the overflow of plain actions.
    keep = MAX_ACTIONS - 1 - len(forms)
    return simple[:keep] + forms + [_show("More…", [], simple[keep:])]


def _field_inputs(card: IncidentCard) -> list[dict[str, Any]]:
    """One input and "Set" button per custom field a responder may set here, within FIELD_INPUTS_BYTES."""
    out: list[dict[str, Any]] = []
    spent = 0
    for f in card.field_inputs:
        block = _field_input(card, f)
        cost = len(json.dumps(block, ensure_ascii=False).encode())
        if spent + cost > FIELD_INPUTS_BYTES:
            break
        out.append(block)
        spent += cost
    return out


def _field_input(card: IncidentCard, f: FieldInput) -> dict[str, Any]:
    input_id = f"{FIELD_INPUT}{f.field_id}"
    label = _title(f.label)
    if f.kind == "checkbox":
        element: dict[str, Any] = {"type": "Input.Toggle", "id": input_id, "title": label, "valueOn": "0",
                                   "valueOff": "", "value": "0" if f.chosen else ""}
    else:
        choices = [{"title": _title(o), "value": str(i)} for i, o in enumerate(f.options[:MAX_FIELD_OPTIONS])]
        element = {"type": "Input.ChoiceSet", "id": input_id, "label": label, "style": "compact",
                   "isMultiSelect": f.kind == "multi_select", "choices": choices,
                   "value": ",".join(str(i) for i in f.chosen if i < len(choices))}
    save = _execute(Action.SET_FIELD, pack_for(PLATFORM, Action.SET_FIELD, card.incident_id, field_id=f.field_id),
                    f"Set {label}")
    save["data"]["field"] = input_id
    return {"type": "Container", "items": [element, {"type": "ActionSet", "actions": [save]}]}


def _title(text: str) -> str:
    """A plain-text title (choices and toggles show no markdown), cut to MAX_OPTION_TITLE characters."""
    return text if len(text) <= MAX_OPTION_TITLE else text[:MAX_OPTION_TITLE - 1] + "…"


def _snooze(card: IncidentCard) -> dict[str, Any]:
    choices = [{"title": minutes_label(m), "value": pack_for(PLATFORM, Action.SNOOZE, card.incident_id, minutes=m)}
               for m in card.snooze_choices]
    picker = {"type": "Input.ChoiceSet", "id": SNOOZE_INPUT, "style": "compact", "isRequired": True,
              "value": choices[0]["value"], "choices": choices}
    return _show(ACTION_LABELS[Action.SNOOZE], [picker], [_execute(Action.SNOOZE, choices[0]["value"])])


def _execute(action: Action, packed: str, title: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {"type": "Action.Execute", "title": title or ACTION_LABELS[action], "verb": action.value,
                           "data": {"action": packed}}
    style = _STYLE.get(ACTION_EMPHASIS.get(action, Emphasis.DEFAULT))
    if style:
        out["style"] = style
    return out


def _show(title: str, body: list[dict[str, Any]], actions: list[dict[str, Any]]) -> dict[str, Any]:
    return {"type": "Action.ShowCard", "title": title,
            "card": {"type": "AdaptiveCard", "body": body, "actions": actions}}


def _image(image: CardImage) -> dict[str, Any]:
    out: dict[str, Any] = {"type": "Image", "url": image.src, "altText": image.alt or "Alert image", "size": "Large"}
    if image.href:
        out["selectAction"] = {"type": "Action.OpenUrl", "url": image.href}
    return out


def _text(text: str, **props: Any) -> dict[str, Any]:
    return {"type": "TextBlock", "text": text, "wrap": True, **props}
