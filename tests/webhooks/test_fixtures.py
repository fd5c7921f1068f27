"""One runner for every recorded payload: parse it with its format and compare with the expected events.

Expected files live in tests/webhooks/expected/<fixture dir>/<name>.json; each was reviewed by hand
against the format's mapping rules (see the module docstrings in webhooks/).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.webhooks.conftest import FIXTURES, NOW, as_json
from webhooks.registry import PARSERS

FORMAT_OF_DIR = {
    "alertmanager": "prometheus",
    "grafana": "grafana",
    "zabbix": "zabbix",
    "n9e": "n9e",
    "standard": "standard",
}
EXPECTED = Path(__file__).parent / "expected"
CASES = sorted((d, p.stem) for d in FORMAT_OF_DIR for p in (FIXTURES / d).glob("*.json"))


def test_every_fixture_has_expectations():
    assert len(CASES) >= 15
    missing = [f"{d}/{n}" for d, n in CASES if not (EXPECTED / d / f"{n}.json").exists()]
    assert missing == []


@pytest.mark.parametrize("fixture_dir, name", CASES)
def test_fixture_parses_to_expected_events(fixture_dir, name):
    body = json.loads((FIXTURES / fixture_dir / f"{name}.json").read_text())
    events = PARSERS[FORMAT_OF_DIR[fixture_dir]](body, {}, NOW)
    expected = json.loads((EXPECTED / fixture_dir / f"{name}.json").read_text())
    assert [as_json(e) for e in events] == expected
