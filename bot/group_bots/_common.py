"""Plumbing shared by the group-bot senders: one POST, secrets to redact, platform error JSON -> DeliveryError."""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import aiohttp

from bot.adapters._http import DETAIL_LIMIT, Reply, error_for_status, redact, send_request
from bot.adapters.errors import DeliveryError
from bot.group_bots.model import BotConfig, BotMessage, Mention

# Path segments or query values this long are treated as credentials (webhook keys, bot tokens).
_TOKEN_MIN = 6
_PLAIN_PATH = frozenset({"open-apis", "robot", "send", "webhook", "services", "cgi-bin", "incomingwebhook",
                         "webhooks", "sendMessage", "hook", "chat"})


def webhook_url(config: BotConfig, default_base: str, *, query_key: str = "") -> str:
    """The bot's URL; a bare token (no scheme) goes into the platform's public webhook URL."""
    if "://" in config.url:
        return config.url
    token = config.url.strip()
    return f"{default_base}?{query_key}={token}" if query_key else f"{default_base}{token}"


def secrets_of(config: BotConfig) -> list[str]:
    """Everything that must never appear in an error: the secret, the URL and the tokens inside it."""
    found = [config.secret, config.url]
    if "://" not in config.url:
        return found
    parts = urlsplit(config.url)
    segments = [seg for seg in parts.path.split("/") if len(seg) >= _TOKEN_MIN and seg not in _PLAIN_PATH]
    # Telegram puts the token after a literal "bot" (/bot123:ABC/sendMessage); servers echo it bare.
    found += segments + [seg[3:] for seg in segments if seg.startswith("bot") and len(seg) > 3 + _TOKEN_MIN]
    found += [value for _, value in parse_qsl(parts.query) if len(value) >= _TOKEN_MIN]
    if parts.password:
        found.append(parts.password)
    return found


async def post_json(config: BotConfig, http: aiohttp.ClientSession, url: str, body: Any, *, provider: str,
                    headers: Mapping[str, str] | None = None, check_status: bool = True) -> Reply:
    """POST JSON to the bot; network failures, timeouts and (unless told not to) non-2xx become DeliveryError."""
    secrets = secrets_of(config)
    reply = await send_request(http, "POST", url, provider=provider, timeout=config.timeout, secrets=secrets,
                               data=json.dumps(body, ensure_ascii=False).encode(),
                               headers={"Content-Type": "application/json; charset=utf-8", **(headers or {})})
    if check_status and not reply.ok:
        raise error_for_status(provider, reply, _detail(reply), secrets)
    return reply


def _detail(reply: Reply) -> str:
    data = reply.json()
    if isinstance(data, dict):
        for keys in (("errcode", "errmsg"), ("code", "msg"), ("error_code", "description"), ("code", "message")):
            if keys[0] in data or keys[1] in data:
                return f"{data.get(keys[0])} {data.get(keys[1], '')}".strip()
    return reply.text().strip()[:DETAIL_LIMIT]


def platform_error(config: BotConfig, provider: str, code: Any, text: str, *, retryable: bool,
                   retry_after: float | None = None) -> DeliveryError:
    """A failure the platform reported in its JSON (often with HTTP 200), without any secret in it."""
    message = redact(f"{provider}: error {code}: {text}"[:DETAIL_LIMIT], secrets_of(config))
    # The code is the platform's too, so the short reason keeps only a few characters of it.
    reason = redact(f"{provider}: platform error {str(code)[:16]}", secrets_of(config))
    return DeliveryError(message, retryable=retryable, retry_after=retry_after if retryable else None, reason=reason)


def check_code(config: BotConfig, reply: Reply, *, provider: str, code_key: str, text_key: str,
               retryable: Collection[int]) -> dict[str, Any]:
    """The reply's JSON object when its `code_key` is 0 (or absent); otherwise a DeliveryError."""
    data = reply.json()
    if not isinstance(data, dict):
        raise platform_error(config, provider, "-", "the answer is not a JSON object", retryable=True)
    code = data.get(code_key, 0)
    if code in (0, None, "0"):
        return data
    try:
        number = int(code)
    except (TypeError, ValueError):
        number = -1
    raise platform_error(config, provider, code, str(data.get(text_key, "")), retryable=number in retryable)


def heading(message: BotMessage) -> str:
    """The one-line headline every bot starts with: severity, progress and title."""
    return f"[{message.severity.value}] [{message.progress.value}] {message.title}"


def unresolved(mentions: tuple[Mention, ...]) -> list[str]:
    """Names of people we cannot @ natively on a platform: shown as plain text so nobody is silently left out."""
    return [m.member_name for m in mentions if not m.im_user_id and m.member_name]


def fit(text: str, room: int, *, in_bytes: bool = False) -> str:
    """`text` within `room` characters (UTF-8 bytes if `in_bytes`), cut with "…" where it must be.

    Cuts at a line end when one is in the second half of what fits, so markup is less often split inside
    a link or a bold span; senders fit the text alone and append mentions after, so those are never cut.
    """
    def size(s: str) -> int:
        return len(s.encode()) if in_bytes else len(s)

    if size(text) <= room:
        return text
    room -= size("…")
    if room <= 0:
        return ""
    head = text.encode()[:room].decode("utf-8", "ignore") if in_bytes else text[:room]
    line_end = head.rfind("\n")
    if line_end > len(head) // 2:
        head = head[:line_end]
    return head.rstrip() + "…"
