"""Chat platform adapters, registered explicitly (no discovery): one module per platform.

`ADAPTERS` maps a platform to its adapter class; each class builds itself from an IM app's
settings and decrypted secrets with `from_app(settings, secrets, http=...)`.

A platform's module (and its SDK) is imported the first time that platform is asked for: the SDKs
take seconds to import (lark-oapi alone most of them), and a Vigil without a Feishu app should not
pay for Feishu at every start.
"""

from __future__ import annotations

import asyncio
import importlib
from collections.abc import Iterator, Mapping
from typing import Any

from core.types import Platform

_MODULES: dict[Platform, tuple[str, str]] = {
    Platform.SLACK: ("bot.adapters.slack", "SlackAdapter"),
    Platform.FEISHU: ("bot.adapters.feishu", "FeishuAdapter"),
    Platform.DINGTALK: ("bot.adapters.dingtalk", "DingTalkAdapter"),
    Platform.WECOM: ("bot.adapters.wecom", "WeComAdapter"),
    Platform.TEAMS: ("bot.adapters.teams", "TeamsAdapter"),
}


class _Adapters(Mapping[Platform, Any]):
    """Platform -> adapter class, importing each module on first use; a missing module is not offered."""

    def __init__(self) -> None:
        self._loaded: dict[Platform, Any] = {}
        self._missing: set[Platform] = set()

    def __getitem__(self, platform: Platform) -> Any:
        if platform in self._loaded:
            return self._loaded[platform]
        if platform not in _MODULES or platform in self._missing:
            raise KeyError(platform)
        module, cls = _MODULES[platform]
        try:
            mod = importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name != module:
                raise  # the module is there but its SDK is not installed: say so, loudly
            self._missing.add(platform)
            raise KeyError(platform) from None
        self._loaded[platform] = getattr(mod, cls)
        return self._loaded[platform]

    def __iter__(self) -> Iterator[Platform]:
        return iter([p for p in _MODULES if p in self])

    def __contains__(self, platform: object) -> bool:
        try:
            self[platform]  # type: ignore[index]
        except KeyError:
            return False
        return True

    def __len__(self) -> int:
        return sum(1 for _ in self)


ADAPTERS: Mapping[Platform, Any] = _Adapters()


async def adapter_class(platform: Platform) -> Any | None:
    """The platform's adapter class, or None if this build lacks it; its module imported off the event loop.

    Importing lark-oapi takes seconds: on the event loop, configuring a Feishu app froze every request,
    /healthz and ingest included, for that long. In a thread, the loop keeps serving while it imports.
    """
    module = _MODULES.get(platform)
    if module is None:
        return None
    try:
        await asyncio.to_thread(importlib.import_module, module[0])
    except ModuleNotFoundError:
        pass  # ADAPTERS.get below tells a missing SDK (raise) from a module this build lacks (None)
    return ADAPTERS.get(platform)
