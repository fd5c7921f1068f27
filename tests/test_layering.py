"""Guards the folder contracts of DESIGN.md by parsing imports."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent
FORBIDDEN_IN_CORE = ("aiohttp", "bot", "webhooks", "mapping_tables", "slack_bolt", "slack_sdk", "lark_oapi",
                     "dingtalk_stream", "botbuilder")
PURE = ("core/conditions.py", "core/grouping.py", "core/schedules.py", "core/types.py")
# bot/media/: providers import the contract (base.py), the registry imports the providers; never the other way.
MEDIA_CONTRACT = "bot/media/base.py"
MEDIA_PROVIDERS = ("bot/media/email.py", "bot/media/twilio.py", "bot/media/http_sms.py", "bot/media/aliyun_sms.py")


def imports(path: Path) -> set[str]:
    return {name.split(".")[0] for name in modules_imported(path)}


def modules_imported(path: Path) -> set[str]:
    """The full dotted names of the modules `path` imports absolutely (`from a.b import c` gives a.b)."""
    tree = ast.parse(path.read_text())
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.add(node.module)
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


def test_media_contract_imports_no_media_module():
    assert not {m for m in modules_imported(ROOT / MEDIA_CONTRACT) if m.startswith("bot.media")}


@pytest.mark.parametrize("path", MEDIA_PROVIDERS)
def test_media_providers_import_the_contract_not_the_registry(path):
    media = {m for m in modules_imported(ROOT / path) if m.startswith("bot.media")}
    assert media == {"bot.media.base"}, f"{path} imports {media}"


@pytest.mark.parametrize("path", sorted(p.relative_to(ROOT).as_posix() for p in (ROOT / "bot/adapters").rglob("*.py")))
def test_chat_adapters_never_import_media(path):
    assert not {m for m in modules_imported(ROOT / path) if m == "bot.media" or m.startswith("bot.media.")}
