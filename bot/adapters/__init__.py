"""Chat platform adapters, registered explicitly (no discovery): one module per platform.

`ADAPTERS` maps a platform to its adapter class; each class builds itself from an IM app's
settings and decrypted secrets with `from_app(settings, secrets, http=...)`.
"""

from __future__ import annotations

from typing import Any

from core.types import Platform

ADAPTERS: dict[Platform, Any] = {}


def _register() -> None:
    # Each import is one line; a platform whose module is missing is simply not offered.
    for platform, module, cls in (
        (Platform.SLACK, "bot.adapters.slack", "SlackAdapter"),
        (Platform.FEISHU, "bot.adapters.feishu", "FeishuAdapter"),
        (Platform.DINGTALK, "bot.adapters.dingtalk", "DingTalkAdapter"),
        (Platform.WECOM, "bot.adapters.wecom", "WeComAdapter"),
        (Platform.TEAMS, "bot.adapters.teams", "TeamsAdapter"),
    ):
        try:
            mod = __import__(module, fromlist=[cls])
        except ModuleNotFoundError as exc:
            if exc.name != module:
                raise
            continue
        ADAPTERS[platform] = getattr(mod, cls)


_register()
