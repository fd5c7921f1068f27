"""E-mail in, alert event out: how an e-mail integration reads a message (pure; the SMTP side is
webhooks/mail_server.py).

Title from the subject; description from the text/plain part, else the text of the HTML part; severity by
the first keyword rule that matches the subject (default otherwise); a recovery keyword ("RESOLVED", "OK",
...) in the subject makes the event a recovery. The dedup key (alert_key) comes from a header, a regex over
the subject, or the subject itself with the status words taken out, so that "PROBLEM: disk full on db-1",
"[FIRING:2] disk full on db-1" and "RESOLVED: disk full on db-1" are one alert.

A message that cannot be decoded raises `BadMail` naming what is wrong: the SMTP reply carries it to the
sender's mail server, which bounces it, so nothing is lost silently.
"""

from __future__ import annotations

import email
import email.policy
import hashlib
import re
from datetime import datetime
from email import errors as email_errors
from email.message import EmailMessage
from email.utils import parseaddr, parsedate_to_datetime
from html.parser import HTMLParser
from typing import Any, Literal

import re2
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from core.storable import storable
from core.types import AlertEvent, EventStatus, Severity
from webhooks.standard import LABEL_VALUE_MAX, TITLE_MAX

DESCRIPTION_MAX = 2048  # as the standard event's description
ALERT_KEY_MAX = 255
KEY_LENGTH = 32  # an integration key is 32 hex characters (core.secrets.new_key): the address's local part
_KEY = re.compile(r"[0-9a-f]{32}")
_HEADER_NAME = re.compile(r"[!-9;-~]+")  # RFC 5322 field name: printable ASCII but ':'
_BASE64_DEFECTS = (email_errors.InvalidBase64CharactersDefect, email_errors.InvalidBase64PaddingDefect,
                   email_errors.InvalidBase64LengthDefect)


class BadMail(ValueError):
    """A message that cannot become an alert event; the text says why (it goes into the SMTP reply)."""


class SeverityRule(BaseModel):
    model_config = ConfigDict(extra="forbid")
    keyword: str = Field(min_length=1, max_length=100, description="a word or phrase of the subject, any case")
    severity: Severity


DEFAULT_SEVERITY_RULES = [SeverityRule(keyword=k, severity=s) for k, s in (
    ("critical", Severity.CRITICAL), ("disaster", Severity.CRITICAL), ("warning", Severity.WARNING),
    ("info", Severity.INFO))]


class MailRules(BaseModel):
    """How one e-mail integration turns a message into an alert event."""

    model_config = ConfigDict(extra="forbid")
    dedup: Literal["subject", "header", "subject_regex"] = Field(
        default="subject", description="where the alert key comes from: the subject without its status words "
                                       "(severity and recovery keywords), a header, or a regex over the subject")
    dedup_header: str = Field(default="", max_length=100,
                              description="dedup=header: the header holding the key (e.g. X-Alert-Id); a message "
                                          "without it falls back to the subject")
    dedup_regex: str = Field(default="", max_length=500,
                             description="dedup=subject_regex: RE2 regex; the key is its group `key`, else group 1, "
                                         "else the whole match; a subject it does not match falls back to the subject")
    severity_rules: list[SeverityRule] = Field(
        default_factory=lambda: list(DEFAULT_SEVERITY_RULES), max_length=20,
        description="first rule whose keyword is in the subject (a whole word, any case) gives the severity")
    default_severity: Severity = Field(default=Severity.WARNING, description="when no severity rule matches")
    recovery_keywords: list[str] = Field(
        default_factory=lambda: ["RESOLVED", "RECOVERED", "RECOVERY", "OK"], max_length=20,
        description="a subject with one of these words (any case) is a recovery (event_status Ok)")
    status_words: list[str] = Field(
        default_factory=lambda: ["PROBLEM", "FIRING", "TRIGGERED", "ALERT"], max_length=20,
        description="dedup=subject: words taken out of the subject for the key, besides the severity and "
                    "recovery keywords (the words that differ between a problem's mail and its recovery's)")

    @field_validator("recovery_keywords", "status_words")
    @classmethod
    def _words(cls, words: list[str], info: Any) -> list[str]:
        for i, w in enumerate(words):
            if not w.strip() or len(w) > 100:
                raise ValueError(f"{info.field_name}[{i}]: a word is 1 to 100 characters, not blank")
        return words

    @field_validator("dedup_header")
    @classmethod
    def _header(cls, name: str) -> str:
        if name and not _HEADER_NAME.fullmatch(name):
            raise ValueError(f"dedup_header: {name!r} is not a header name")
        return name

    @model_validator(mode="after")
    def _complete(self) -> MailRules:
        if self.dedup == "header" and not self.dedup_header:
            raise ValueError("dedup_header: dedup=header needs the header's name")
        if self.dedup == "subject_regex":
            if not self.dedup_regex:
                raise ValueError("dedup_regex: dedup=subject_regex needs a regex")
            _compile(self.dedup_regex)
        return self


def _compile(pattern: str) -> Any:
    options = re2.Options()
    options.log_errors = False
    try:
        return re2.compile(pattern, options)
    except re2.error as exc:
        reason = exc.args[0].decode(errors="replace") if exc.args and isinstance(exc.args[0], bytes) else exc
        raise ValueError(f"dedup_regex: invalid regex {pattern!r}: {reason}") from None


# ---- addresses ------------------------------------------------------------------------------------


def address_of(key: str, domain: str) -> str:
    """An e-mail integration's address: its key is the local part (so rotating the key changes it)."""
    return f"{key}@{domain}"


def key_of(address: str, domain: str) -> str | None:
    """The integration key an address names, or None when it is not one of ours (other domain, other shape)."""
    local, at, host = address.rpartition("@")
    if not at or host.lower() != domain.lower():
        return None
    local = local.lower()  # mail servers may change the case of a local part; keys are lower-case hex
    return local if _KEY.fullmatch(local) else None


# ---- the message ----------------------------------------------------------------------------------


def parse(raw: bytes, rules: MailRules, now: datetime) -> AlertEvent:
    """The alert event a message stands for; `BadMail` when it cannot be read."""
    try:
        msg = email.message_from_bytes(raw, policy=email.policy.default)
    except Exception as exc:  # the parser is lenient; what it still refuses is not a message
        raise BadMail(f"the message cannot be parsed: {exc}") from None
    assert isinstance(msg, EmailMessage)
    subject = _clean(_header(msg, "subject")).strip()
    description = _clean(_body(msg)).strip()
    if not subject and not description:
        raise BadMail("the message has neither a subject nor a text or HTML body")
    title = " ".join(subject.split()) or description.splitlines()[0].strip()
    recovered = _has_word(subject, rules.recovery_keywords)
    status = EventStatus.OK if recovered else EventStatus(severity_of(subject, rules).value)
    labels = {"from": _clean(parseaddr(_header(msg, "from"))[1])[:LABEL_VALUE_MAX]}
    return AlertEvent(
        event_status=status, title=title[:TITLE_MAX], alert_key=alert_key_of(msg, subject, rules),
        description=description[:DESCRIPTION_MAX], labels={k: v for k, v in labels.items() if v},
        event_time=_date(msg, now),
    )


def severity_of(subject: str, rules: MailRules) -> Severity:
    """The severity of the first keyword rule found in the subject, else the default."""
    for rule in rules.severity_rules:
        if _has_word(subject, [rule.keyword]):
            return rule.severity
    return rules.default_severity


def alert_key_of(msg: EmailMessage, subject: str, rules: MailRules) -> str:
    """The dedup key, as the rules say; the status-free subject when the configured source has none."""
    if rules.dedup == "header":
        value = " ".join(_clean(_header(msg, rules.dedup_header)).split())
        if value:
            return value[:ALERT_KEY_MAX]
    elif rules.dedup == "subject_regex":
        match = _compile(rules.dedup_regex).search(subject)
        if match is not None:
            groups = match.groupdict()
            key = groups.get("key") if "key" in groups else (match.group(1) if match.re.groups else match.group(0))
            if key:
                return key[:ALERT_KEY_MAX]
    words = rules.recovery_keywords + rules.status_words + [r.keyword for r in rules.severity_rules]
    core = " ".join(_without_words(subject, words).lower().split())
    return "mail-" + hashlib.sha256(core.encode()).hexdigest()[:32]


def _word_pattern(words: list[str]) -> re.Pattern[str]:
    alternatives = "|".join(re.escape(w.strip()) for w in sorted(words, key=len, reverse=True) if w.strip())
    return re.compile(rf"(?<!\w)(?:{alternatives})(?!\w)", re.IGNORECASE)


def _has_word(text: str, words: list[str]) -> bool:
    return bool(words) and _word_pattern(words).search(text) is not None


def _without_words(text: str, words: list[str]) -> str:
    """The text without those words, and without what they leave behind: "[FIRING:2]" and "[OK]" go whole,
    "PROBLEM:" takes its colon with it."""
    if words:
        text = _word_pattern(words).sub(" ", text)
    text = re.sub(r"[\[(][^\])a-zA-Z]*[\])]", " ", text)  # brackets left with no word in them
    return re.sub(r"^[\W_]+|[\W_]+$|(?<=\s)[^\w\s]+(?=\s|$)", " ", text)


def _header(msg: EmailMessage, name: str) -> str:
    try:
        value = msg.get(name)
    except Exception as exc:  # a header the policy cannot decode at all
        raise BadMail(f"the {name} header cannot be decoded: {exc}") from None
    return str(value) if value is not None else ""


def _body(msg: EmailMessage) -> str:
    """The text/plain part, else the text of the text/html part ("" when the message has neither)."""
    part = msg.get_body(preferencelist=("plain", "html"))
    if part is None:
        return ""
    try:
        content = part.get_content()
    except LookupError:
        raise BadMail(f"the {part.get_content_type()} part uses an unknown charset "
                      f"{part.get_content_charset()!r}") from None
    except Exception as exc:
        raise BadMail(f"the {part.get_content_type()} part cannot be decoded: {exc}") from None
    # Decoding registers what it had to skip; a body with holes in it is not the message that was sent.
    if any(isinstance(d, _BASE64_DEFECTS) for d in part.defects):
        raise BadMail(f"the {part.get_content_type()} part's base64 encoding is corrupt")
    if not isinstance(content, str):
        return ""
    return text_of_html(content) if part.get_content_type() == "text/html" else content


def _clean(text: str) -> str:
    """Text every database stores: lone surrogates (undecodable bytes) become U+FFFD, U+0000 too."""
    return storable(text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
                    if any("\ud800" <= c <= "\udfff" for c in text) else text)


def _date(msg: EmailMessage, now: datetime) -> datetime | None:
    """The Date header, unless it is missing, unreadable or in the future (the event time is then now)."""
    try:
        when = parsedate_to_datetime(_header(msg, "date"))
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None or when > now:
        return None
    return when


class _Text(HTMLParser):
    _SKIP = frozenset({"script", "style", "head", "title"})
    _BREAK = frozenset({"br", "p", "div", "tr", "li", "h1", "h2", "h3", "h4", "h5", "h6", "table", "pre"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.skipping = 0

    def handle_starttag(self, tag: str, attrs: Any) -> None:
        if tag in self._SKIP:
            self.skipping += 1
        elif tag in self._BREAK:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in self._SKIP:
            self.skipping = max(0, self.skipping - 1)
        elif tag in self._BREAK:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if not self.skipping:
            self.parts.append(data)


def text_of_html(html: str) -> str:
    """The readable text of an HTML body: no tags, scripts or styles; one line per block, blank lines merged."""
    parser = _Text()
    parser.feed(html)
    parser.close()
    lines = (" ".join(line.split()) for line in "".join(parser.parts).splitlines())
    return "\n".join(line for line in lines if line)
