"""JSON snapshot tests: one file per platform and representative card.

Regenerate after an intended change with: VIGIL_UPDATE_SNAPSHOTS=1 uv run pytest tests/cards -q
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from bot.cards import RENDERERS
from core.types import Platform
from tests.cards.cases import CASES

SNAPSHOTS = Path(__file__).parent / "snapshots"
UPDATE = os.environ.get("VIGIL_UPDATE_SNAPSHOTS") == "1"


def dump(rendered: dict) -> str:
    return json.dumps(rendered, indent=2, ensure_ascii=False) + "\n"


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("platform", sorted(RENDERERS, key=lambda p: p.value), ids=lambda p: p.value)
def test_card_matches_snapshot(platform: Platform, case: str) -> None:
    path = SNAPSHOTS / platform.value / f"{case}.json"
    text = dump(RENDERERS[platform](CASES[case]))
    if UPDATE:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    assert path.exists(), f"missing snapshot {path}; run with VIGIL_UPDATE_SNAPSHOTS=1 to create it"
    assert json.loads(text) == json.loads(path.read_text(encoding="utf-8"))


def test_no_orphan_snapshots() -> None:
    expected = {f"{p.value}/{c}.json" for p in RENDERERS for c in CASES}
    present = {p.relative_to(SNAPSHOTS).as_posix() for p in SNAPSHOTS.rglob("*.json")}
    assert present == expected
