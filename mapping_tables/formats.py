"""IM identity formats per platform, pure: which id types exist and what a valid id looks like."""

from __future__ import annotations

import re

from core.types import Platform

# platform -> id type -> pattern. The first id type is the default.
ID_TYPES: dict[Platform, dict[str, re.Pattern[str]]] = {
    Platform.SLACK: {"user_id": re.compile(r"^[UW][A-Z0-9]{2,20}$")},
    Platform.FEISHU: {
        "open_id": re.compile(r"^ou_[0-9a-z]{16,64}$"),
        "user_id": re.compile(r"^[A-Za-z0-9_-]{1,64}$"),
        "union_id": re.compile(r"^on_[0-9a-z]{16,64}$"),
    },
    Platform.DINGTALK: {
        "userid": re.compile(r"^[A-Za-z0-9_-]{1,64}$"),
        "unionid": re.compile(r"^[A-Za-z0-9]{8,64}$"),
        "mobile": re.compile(r"^\+?[0-9]{6,20}$"),
    },
    Platform.WECOM: {"userid": re.compile(r"^[A-Za-z0-9_.@-]{1,64}$")},
    Platform.TEAMS: {"aad_object_id": re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")},
    Platform.TELEGRAM: {"user_id": re.compile(r"^[0-9]{1,20}$")},
    Platform.ZOOM: {"user_id": re.compile(r"^[A-Za-z0-9_.@-]{1,128}$")},
}
PLATFORMS = tuple(ID_TYPES)


def platform_of(name: str) -> Platform:
    """Parse a platform name (`lark` is Feishu's international name: one platform)."""
    name = {"lark": "feishu"}.get(name.lower(), name.lower())
    try:
        platform = Platform(name)
    except ValueError:
        raise ValueError(f"unknown platform {name!r}; one of {', '.join(p.value for p in PLATFORMS)}") from None
    if platform not in ID_TYPES:
        raise ValueError(f"{platform.value} has no mapping table")
    return platform


def check_identity(platform: Platform, im_user_id: str, id_type: str | None) -> str:
    """Validate an IM id for the platform; return its id type (the default when not given)."""
    types = ID_TYPES[platform]
    id_type = id_type or next(iter(types))
    pattern = types.get(id_type)
    if pattern is None:
        raise ValueError(f"id_type {id_type!r} is not a {platform.value} id type ({', '.join(types)})")
    if not pattern.match(im_user_id or ""):
        raise ValueError(f"{im_user_id!r} is not a valid {platform.value} {id_type}")
    return id_type
