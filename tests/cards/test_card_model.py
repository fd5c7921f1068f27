"""IncidentCard validation and the looks shared by every renderer (bot/cards/model.py)."""

from __future__ import annotations

import ast
import dataclasses
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from bot.cards.format import labels_line, minutes_label
from bot.cards.model import (
    ACTION_LABELS,
    MAX_DESCRIPTION,
    MAX_LABELS,
    PROGRESS_LOOK,
    SEVERITY_LOOK,
    IncidentCard,
    Tone,
)
from bot.chat.actions import Action
from core.types import Progress, Severity
from tests.cards.cases import NOW

ROOT = Path(__file__).parents[2]
BASE: dict[str, Any] = dict(incident_id=1, num="1", title="Disk full", severity=Severity.WARNING,
                            progress=Progress.TRIGGERED, url="https://vigil.example.com/incidents/1", updated_at=NOW)


def card(**changes: Any) -> IncidentCard:
    return IncidentCard(**{**BASE, **changes})


@pytest.mark.parametrize(("changes", "problem"), [
    ({"incident_id": 0}, "incident_id must be a positive integer"),
    ({"incident_id": True}, "incident_id must be a positive integer"),
    ({"title": "   "}, "title must be a non-empty string"),
    ({"severity": "Fatal"}, "severity: 'Fatal' is not one of Critical, Warning, Info"),
    ({"progress": "Done"}, "progress: 'Done' is not one of Triggered, Processing, Closed"),
    ({"url": "javascript:alert(1)"}, "url must be an http(s) URL"),
    ({"updated_at": datetime(2024, 5, 1)}, "updated_at must be a timezone-aware datetime"),
    ({"snoozed_until": datetime(2024, 5, 1)}, "snoozed_until must be a timezone-aware datetime"),
    ({"alert_count": -1}, "alert_count must be a non-negative integer"),
    ({"responders": "alice"}, "responders must be a sequence of names"),
    ({"labels": (("k",),)}, "labels must be (key, value) string pairs"),
    ({"actions": ("dance",)}, "actions: 'dance' is not one of"),
    ({"actions": (Action.REFRESH,)}, "actions must not contain refresh"),
    ({"actions": (Action.ACK, "ack")}, "actions must not repeat"),
    ({"snooze_choices": (0, 30)}, "snooze_choices must be minutes from 1 to 1440"),
    ({"snooze_choices": (30, 1441)}, "snooze_choices must be minutes from 1 to 1440"),
    ({"snooze_choices": (30, 30)}, "snooze_choices must be distinct"),
    ({"snooze_choices": (), "actions": (Action.SNOOZE,)}, "non-empty when snooze is offered"),
])
def test_bad_card_input_names_the_field(changes: dict[str, Any], problem: str) -> None:
    with pytest.raises(ValueError) as err:
        card(**changes)
    assert problem in str(err.value)


def test_card_normalises_its_input_once() -> None:
    c = card(title="  Disk \n full  ", labels={f"k{i}": "v" for i in range(MAX_LABELS + 3)},
             description=" x" * MAX_DESCRIPTION, responders=("Ann", " ", "Bo"), actions=("ack", "close"),
             severity="Critical")
    assert c.title == "Disk full"
    assert len(c.labels) == MAX_LABELS and c.hidden_labels == 3
    assert labels_line(c).endswith("+3 more")
    assert len(c.description) == MAX_DESCRIPTION and c.description.endswith("…")
    assert c.responders == ("Ann", "Bo")
    assert c.actions == (Action.ACK, Action.CLOSE) and c.severity is Severity.CRITICAL
    with pytest.raises(dataclasses.FrozenInstanceError):
        c.title = "changed"  # type: ignore[misc]
    hash(c)


@pytest.mark.parametrize(("severity", "progress", "tone", "colour"), [
    (Severity.CRITICAL, Progress.TRIGGERED, Tone.DANGER, SEVERITY_LOOK[Severity.CRITICAL].colour),
    (Severity.WARNING, Progress.PROCESSING, Tone.WARNING, SEVERITY_LOOK[Severity.WARNING].colour),
    (Severity.INFO, Progress.TRIGGERED, Tone.INFO, SEVERITY_LOOK[Severity.INFO].colour),
    (Severity.CRITICAL, Progress.CLOSED, Tone.SUCCESS, PROGRESS_LOOK[Progress.CLOSED].colour),
])
def test_tone_and_colour(severity: Severity, progress: Progress, tone: Tone, colour: str) -> None:
    c = card(severity=severity, progress=progress)
    assert (c.tone, c.colour) == (tone, colour)


@pytest.mark.parametrize(("progress", "given", "shown"), [
    (Progress.TRIGGERED, (Action.ACK, Action.CLOSE), (Action.ACK, Action.CLOSE)),
    (Progress.CLOSED, (Action.COMMENT, Action.REOPEN, Action.ACK), (Action.REOPEN,)),
    (Progress.CLOSED, (Action.COMMENT,), ()),
])
def test_closed_cards_show_only_reopen(progress: Progress, given: tuple, shown: tuple) -> None:
    assert card(progress=progress, actions=given).buttons == shown


def test_every_value_has_a_look_and_every_action_a_label() -> None:
    assert set(SEVERITY_LOOK) == set(Severity) and set(PROGRESS_LOOK) == set(Progress)
    assert set(ACTION_LABELS) == set(Action)
    assert all(look.colour.startswith("#") and len(look.colour) == 7 for look in [*SEVERITY_LOOK.values(),
                                                                                   *PROGRESS_LOOK.values()])


@pytest.mark.parametrize(("minutes", "label"), [
    (30, "30 min"), (60, "1 hour"), (90, "1 h 30 min"), (240, "4 hours"), (1440, "1 day"), (2880, "2 days"),
])
def test_minutes_label(minutes: int, label: str) -> None:
    assert minutes_label(minutes) == label


def test_snoozed_until_keeps_its_zone() -> None:
    c = card(snoozed_until=NOW + timedelta(hours=2))
    assert c.snoozed_until is not None and c.snoozed_until.utcoffset() is not None


def imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.add(node.module.split(".")[0])
    return out


@pytest.mark.parametrize("path", sorted(p.relative_to(ROOT).as_posix()
                                        for p in [*(ROOT / "bot/cards").glob("*.py"), ROOT / "bot/chat/actions.py"]))
def test_renderers_are_pure(path: str) -> None:
    text = (ROOT / path).read_text()
    assert not imports(ROOT / path) & {"sqlalchemy", "sqlmodel", "aiohttp", "arq", "redis", "requests", "httpx"}
    assert "now(" not in text and "utcnow(" not in text and "time.time(" not in text
