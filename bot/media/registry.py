"""The media providers, registered explicitly: `PROVIDERS` maps a provider name to its class.

The providers import the contract (bot/media/base.py); this module imports the providers.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from bot.media.aliyun_sms import AliyunSmsProvider
from bot.media.base import MediaProvider
from bot.media.email import EmailProvider
from bot.media.http_sms import HttpSmsProvider
from bot.media.twilio import TwilioSmsProvider, TwilioVoiceProvider

if TYPE_CHECKING:
    import aiohttp

PROVIDERS: dict[str, type[MediaProvider]] = {
    cls.name: cls
    for cls in (EmailProvider, TwilioSmsProvider, TwilioVoiceProvider, AliyunSmsProvider, HttpSmsProvider)
}


def build_provider(
    name: str, config: Mapping[str, Any] | BaseModel, session: aiohttp.ClientSession | None = None
) -> MediaProvider:
    """Validate `config` with the named provider's model and construct the provider."""
    try:
        cls = PROVIDERS[name]
    except KeyError:
        raise ValueError(f"unknown media provider {name!r}; known: {', '.join(sorted(PROVIDERS))}") from None
    model = config if isinstance(config, cls.config_model) else cls.config_model.model_validate(config)
    return cls(model, session)  # type: ignore[call-arg]
