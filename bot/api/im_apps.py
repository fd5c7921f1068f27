"""/api/v1/im-apps: Slack / Feishu-Lark / DingTalk / WeCom / Teams app credentials (secrets encrypted at rest)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field
from sqlalchemy import select

from bot.api.common import get_or_404, paged, patch_changes, ts
from bot.api.framework import Call, Page, endpoint
from bot.egress import require_sendable
from bot.keys import SETTINGS
from core.crypto import seal, unseal
from core.errors import InvalidInput
from core.models import ImApp

PlatformName = Literal["slack", "feishu", "dingtalk", "wecom", "teams"]


class ImAppIn(BaseModel):
    platform: PlatformName
    name: str = Field(min_length=1, max_length=100)
    settings: dict[str, Any] = Field(default_factory=dict, description="non-secret settings (base_url, app ids); "
                                     "URLs are http or https, internal addresses need VIGIL_EGRESS_ALLOW; Feishu: "
                                     "`allow_unsigned: true` accepts callbacks without an Encrypt Key, checked by "
                                     "the verification token only (refused otherwise)")
    secrets: dict[str, str] = Field(default_factory=dict, description="write-only: tokens, signing secrets, keys")


class ImAppPatch(BaseModel):
    name: str | None = Field(default=None, min_length=1, max_length=100)
    settings: dict[str, Any] | None = None
    secrets: dict[str, str] | None = Field(default=None, description="replaces the given keys only")
    status: Literal["enabled", "disabled"] | None = None


class ImAppOut(BaseModel):
    im_app_id: int
    platform: str
    name: str
    settings: dict[str, Any]
    secret_keys: list[str] = Field(description="names of the stored secrets; their values are never returned")
    status: str
    problems: list[str] = Field(description="what is wrong with the app as configured, found when the apps were "
                                "(re)built: bad settings, or e.g. a Feishu app without an Encrypt Key, whose "
                                "callbacks cannot be verified")
    created_at: int
    updated_at: int


def _out(c: Call, a: ImApp, problems: list[str] | None = None) -> dict:
    try:
        keys = sorted(unseal(c.request.app[SETTINGS].secret_key, a.secrets))
    except ValueError as exc:
        keys, problems = [], [*(problems or []), str(exc)]
    return {"im_app_id": a.id, "platform": a.platform, "name": a.name, "settings": dict(a.settings),
            "secret_keys": keys, "status": a.status,
            "problems": [p for p in (problems or []) if p.startswith(f"im app {a.id}:")] or [],
            "created_at": ts(a.created_at), "updated_at": ts(a.updated_at)}


async def _rebuild(c: Call) -> list[str]:
    from bot.chat.routes import rebuild_adapters

    return await rebuild_adapters(c.request.app)


def _check_urls(c: Call, settings: dict[str, Any]) -> None:
    """Every URL setting (base_url, token_url, stream_endpoint...) is http/https and no refused IP literal."""
    policy = c.request.app[SETTINGS].egress_policy()
    for key, value in settings.items():
        if key.endswith(("_url", "_endpoint")) and value not in (None, ""):
            if not isinstance(value, str):
                raise InvalidInput(f"settings.{key}: must be a URL string")
            require_sendable(f"settings.{key}", value, policy)


def _seal(c: Call, secrets: dict[str, str]) -> str:
    try:
        return seal(c.request.app[SETTINGS].secret_key, secrets) if secrets else ""
    except ValueError as exc:
        raise InvalidInput(f"secrets: {exc}") from None


@endpoint("POST", "/im-apps", body=ImAppIn, response=ImAppOut, status=201, need="admin",
          summary="Connect a chat platform app", tag="im-apps")
async def create_app(c: Call) -> dict:
    same = (await c.session.execute(select(ImApp).where(ImApp.platform == c.body.platform,
                                                        ImApp.status == "enabled"))).first()
    if same:
        raise InvalidInput(f"platform: an enabled {c.body.platform} app exists; disable it first")
    _check_urls(c, c.body.settings)
    a = ImApp(platform=c.body.platform, name=c.body.name, settings=c.body.settings,
              secrets=_seal(c, c.body.secrets), created_at=c.now, updated_at=c.now)
    c.session.add(a)
    await c.session.commit()
    return _out(c, a, await _rebuild(c))


@endpoint("GET", "/im-apps", query=Page, response=ImAppOut, paged=True, summary="List chat platform apps",
          tag="im-apps", need="admin")
async def list_apps(c: Call) -> dict:
    return await paged(c.session, select(ImApp).order_by(ImApp.id), c.query, lambda a: _out(c, a))


@endpoint("GET", "/im-apps/{id}", response=ImAppOut, summary="Get a chat platform app", tag="im-apps", need="admin")
async def get_app(c: Call) -> dict:
    return _out(c, await get_or_404(c.session, ImApp, c.path_int("id"), "im app"))


@endpoint("PATCH", "/im-apps/{id}", body=ImAppPatch, response=ImAppOut, need="admin",
          summary="Update a chat platform app", tag="im-apps")
async def patch_app(c: Call) -> dict:
    a = await get_or_404(c.session, ImApp, c.path_int("id"), "im app")
    changes = patch_changes(c.body)
    if changes.get("settings"):
        _check_urls(c, changes["settings"])
    if "secrets" in changes:
        try:
            current = unseal(c.request.app[SETTINGS].secret_key, a.secrets)
        except ValueError:
            current = {}
        a.secrets = _seal(c, {**current, **changes.pop("secrets")})
    for k, v in changes.items():
        setattr(a, k, v)
    a.updated_at = c.now
    await c.session.commit()
    return _out(c, a, await _rebuild(c))


@endpoint("DELETE", "/im-apps/{id}", summary="Remove a chat platform app", tag="im-apps", need="admin")
async def delete_app(c: Call) -> dict:
    a = await get_or_404(c.session, ImApp, c.path_int("id"), "im app")
    await c.session.delete(a)
    await c.session.commit()
    await _rebuild(c)
    return {}
