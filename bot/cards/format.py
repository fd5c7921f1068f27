"""Text helpers every renderer shares: truncation, durations, times, names, the fallback summary."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # model imports cut() from here
    from bot.cards.model import IncidentCard

ELLIPSIS = "…"


def cut(text: str, limit: int) -> str:
    """Shorten `text` to at most `limit` characters, marking the cut with an ellipsis."""
    return text if len(text) <= limit else text[: max(0, limit - 1)].rstrip() + ELLIPSIS


def cut_bytes(text: str, limit: int) -> str:
    """Shorten `text` to at most `limit` UTF-8 bytes without splitting a character."""
    if len(text.encode()) <= limit:
        return text
    budget = limit - len(ELLIPSIS.encode())
    return text.encode()[:budget].decode(errors="ignore").rstrip() + ELLIPSIS


def md_url(url: str) -> str:
    """A URL as the target of a Markdown link or image: parentheses, which RFC 3986 allows, would end it early."""
    return url.replace("(", "%28").replace(")", "%29")


def minutes_label(minutes: int) -> str:
    """Human duration for a snooze choice: 30 min, 1 hour, 4 hours, 1 day, 1 h 30 min."""
    if minutes % 1440 == 0:
        days = minutes // 1440
        return f"{days} day" + ("s" if days > 1 else "")
    if minutes % 60 == 0:
        hours = minutes // 60
        return f"{hours} hour" + ("s" if hours > 1 else "")
    if minutes > 60:
        return f"{minutes // 60} h {minutes % 60} min"
    return f"{minutes} min"


def utc_text(moment: datetime) -> str:
    """A time as plain text in UTC, for platforms without local-time formatting."""
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def rfc3339(moment: datetime) -> str:
    """A time as RFC 3339 in UTC with a Z suffix."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def names(people: tuple[str, ...], *, limit: int = 300, empty: str = "—") -> str:
    """Comma-joined names, cut to `limit` characters."""
    return cut(", ".join(people), limit) if people else empty


def _as_is(text: str) -> str:
    return text


def labels_line(card: IncidentCard, *, sep: str = " · ", fmt: str = "{k}={v}",
                escape: Callable[[str], str] = _as_is) -> str:
    """The key labels on one line, with a '+N more' tail when some were left off.

    `escape` is applied to each key and value (alert text) but not to `fmt`, the renderer's own markup.
    """
    parts = [fmt.format(k=escape(k), v=escape(v)) for k, v in card.labels]
    if card.hidden_labels:
        parts.append(f"+{card.hidden_labels} more")
    return sep.join(parts)


def headline(card: IncidentCard, *, limit: int = 150, escape: Callable[[str], str] = _as_is) -> str:
    """Title line with the severity emoji and short id, e.g. '🔴 #A1B2 Disk full'.

    The line is cut to `limit` first and the title escaped after, so a cut never splits an escape.
    """
    return _titled(f"{card.severity_look.emoji} #{card.num} ", card.title, limit, escape)


def summary(card: IncidentCard, *, limit: int = 300, escape: Callable[[str], str] = _as_is) -> str:
    """One-line fallback used for notifications and previews; `escape` for platforms that read it as markup."""
    sev, prog = card.severity_look, card.progress_look
    return _titled(f"{sev.emoji} [{sev.label}] {prog.label}: #{card.num} ", card.title, limit, escape)


def _titled(prefix: str, title: str, limit: int, escape: Callable[[str], str]) -> str:
    line = cut(prefix + title, limit)
    if not line.startswith(prefix):  # the limit left no room for the title: only our own text remains
        return line
    return prefix + escape(line[len(prefix):])


def status_line(card: IncidentCard) -> str:
    """Severity, progress and snooze state as one short line."""
    sev, prog = card.severity_look, card.progress_look
    line = f"{sev.emoji} {sev.label} · {prog.emoji} {prog.label}"
    if card.snoozed_until is not None:
        line += f" · 💤 until {utc_text(card.snoozed_until)}"
    return line
