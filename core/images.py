"""Alert images (standard events' `images`, Grafana panels) as notifications show them: cards, e-mail, templates.

Intake (webhooks/standard.py `image_of`) keeps what the reference allows: an http(s) URL or the image key of an
IM platform upload. Only an https URL is ever shown, as on the incident page (bot/web/templates/incident.html):
an image key is no address, and an http image is mixed content and can be swapped on its way. A URL holding a
character RFC 3986 never allows unencoded (space, quote, <, >, `, |, ...) is not shown either, so no markup a
renderer wraps around it (Markdown, mrkdwn links, HTML attributes) can be broken out of.

Outgoing webhooks pass the stored images on as they are (webhooks/outgoing.py): a receiver is a program.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from sqlalchemy import select, union_all
from sqlalchemy.ext.asyncio import AsyncSession

from core.models import Alert

MAX_SHOWN = 3  # images a card or an e-mail shows; the incident page has all of them
MAX_PASSED_ON = 10  # images an incident webhook carries; each alert's own are all in its alert payload
MAX_ALT = 128  # the reference's alt limit
MAX_URL = 512  # intake keeps src and href within 256; room to spare, and cards stay within their byte limits
SCAN_ALERTS = 20  # newest alerts of an incident searched for images: a storm's thousands are never read
CHUNK = 400  # incidents per statement: SQLite allows 500 terms in a compound SELECT
_UNSAFE = re.compile(r"[\s\"'<>\\^`{|}]")


def web_url(value: Any, *, https_only: bool) -> bool:
    """True for an https (or, without `https_only`, http) URL that is safe to put inside markup."""
    if not isinstance(value, str) or len(value) > MAX_URL or _UNSAFE.search(value):
        return False
    schemes = ("https://",) if https_only else ("https://", "http://")
    return value.lower().startswith(schemes) and len(value) > len("https://")


def shown(images: Iterable[Any], limit: int = MAX_SHOWN) -> list[dict[str, str]]:
    """The first `limit` images that may be shown, as {src, alt, href}: https src only, one per src, href kept
    only when it is a web URL."""
    out: list[dict[str, str]] = []
    seen: set[str] = set()
    for image in images:
        if len(out) >= limit:
            break
        if not isinstance(image, Mapping) or not web_url(src := image.get("src"), https_only=True) or src in seen:
            continue
        seen.add(src)
        alt, href = image.get("alt"), image.get("href")
        out.append({"src": src, "alt": " ".join(alt.split())[:MAX_ALT] if isinstance(alt, str) else "",
                    "href": href if web_url(href, https_only=False) else ""})
    return out


def passed_on(images: Iterable[Any], limit: int = MAX_PASSED_ON) -> list[dict[str, str]]:
    """The first `limit` images as stored ({src, alt, href}, one per src) for a program to read: an outgoing
    webhook passes an image key or an http URL on as the alert gave it."""
    out: list[dict[str, str]] = []
    seen: set[str] = set()
    for image in images:
        if len(out) >= limit:
            break
        if isinstance(image, Mapping) and isinstance(src := image.get("src"), str) and src not in seen:
            seen.add(src)
            out.append({k: v if isinstance(v := image.get(k), str) else "" for k in ("src", "alt", "href")})
    return out


async def of_incidents(session: AsyncSession, incident_ids: Iterable[int], limit: int = MAX_SHOWN, *,
                       pick: Callable[[Iterable[Any], int], list[dict[str, str]]] = shown,
                       ) -> dict[int, list[dict[str, str]]]:
    """The images of each incident: its newest alerts' first, chosen by `pick` (`shown` for people, `passed_on`
    for webhooks), in one read for a batch of up to CHUNK incidents."""
    ids = sorted(set(incident_ids))
    per: dict[int, list[Any]] = {}
    for start in range(0, len(ids), CHUNK):
        # Each incident's newest alerts by their own LIMIT: SQLite walks the incident_id index from the end
        # and stops (a window over a storm's 20 000 alerts took 11 ms, this 0.5 ms).
        newest = [select(Alert.id, Alert.incident_id, Alert.images).where(Alert.incident_id == i)
                  .order_by(Alert.id.desc()).limit(SCAN_ALERTS).subquery() for i in ids[start:start + CHUNK]]
        query = union_all(*(select(n) for n in newest)) if len(newest) > 1 else select(newest[0])
        for _id, incident_id, stored in sorted((await session.execute(query)).all(), key=lambda r: (r[1], -r[0])):
            per.setdefault(incident_id, []).extend(stored or [])
    return {i: pick(per.get(i, []), limit) for i in ids}
