"""Guards the folder contracts of DESIGN.md by parsing imports."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent
FORBIDDEN_IN_CORE = ("aiohttp", "bot", "webhooks", "mapping_tables", "slack_bolt", "slack_sdk", "lark_oapi",
                     "dingtalk_stream", "botbuilder")
PURE = ("core/conditions.py", "core/grouping.py", "core/schedules.py", "core/types.py")


def imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.add(node.module.split(".")[0])
    return out


@pytest.mark.parametrize("path", sorted(p.relative_to(ROOT).as_posix() for p in (ROOT / "core").rglob("*.py")))
def test_core_never_imports_io_layers(path):
    bad = imports(ROOT / path) & set(FORBIDDEN_IN_CORE)
    assert not bad, f"{path} imports {bad}"


@pytest.mark.parametrize("path", [p for p in PURE if (ROOT / p).exists()])
def test_pure_modules_touch_no_database_or_clock(path):
    text = (ROOT / path).read_text()
    assert not imports(ROOT / path) & {"sqlalchemy", "sqlmodel", "arq", "redis"}
    assert "datetime.now(" not in text and "utcnow()" not in text and "time.time(" not in text
