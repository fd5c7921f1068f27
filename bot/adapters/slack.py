"""Slack: Block Kit cards through the Web API (slack-sdk), clicks, modals and `/vigil` through slack-bolt.

Docs: https://api.slack.com/interactivity/handling (block_actions, response_url, 3 s ack),
https://api.slack.com/authentication/verifying-requests-from-slack (v0 signature, 5 minute window),
https://api.slack.com/surfaces/modals (views.open, view_submission), https://api.slack.com/interactivity/slash-commands,
https://api.slack.com/authentication/rotation (expiring tokens), https://api.slack.com/methods/users.lookupByEmail.

The pure methods (`verify`, `parse_action`, `reply`) serve the shared click path; `dispatch` lets bolt verify
and route the same callbacks (buttons, the snooze select, the Reassign/Comment modals, the slash command).
`/vigil ack <number>` and the other incident actions are clicks; `/vigil oncall` and `/vigil mine` are read-only
queries answered by bot/chat/commands.py, as is `/vigil page @someone <title>`, which opens an incident and pages
them (bot/chat/page_command.py); `/vigil` and `/vigil help` list the commands. Every answer is ephemeral.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import re
from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any, ClassVar
from urllib.parse import parse_qs

import aiohttp
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError
from slack_bolt.async_app import AsyncApp
from slack_bolt.authorization import AuthorizeResult
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.signature import Clock, SignatureVerifier
from slack_sdk.web.async_client import AsyncWebClient

from bot.adapters._http import parse_retry_after, redact
from bot.adapters.base import (
    ActionEvent,
    Ask,
    CallbackId,
    ChatTarget,
    Click,
    HttpReply,
    InboundRequest,
    MessageRef,
    Outcome,
    replayable_for,
)
from bot.adapters.errors import DeliveryError
from bot.cards.slack import ACTION_IDS, FIELD_BLOCK, OPENS_MODAL, without_images
from bot.chat.actions import Action
from bot.chat.commands import PAGE, QUERIES, Query, help_text
from bot.chat.words import command_payload, not_understood
from core.types import Platform

log = logging.getLogger("vigil.slack")
VIGIL_ID = re.compile(r"^vigil\.")  # our action_ids and modal callback_ids (bot/cards/slack.py)
COMMENT, REASSIGN = ACTION_IDS[Action.COMMENT], ACTION_IDS[Action.REASSIGN]
SET_FIELD = ACTION_IDS[Action.SET_FIELD]
MODAL_IDS = frozenset(ACTION_IDS[a] for a in OPENS_MODAL)
MEMBER_INPUT = "vigil.member"  # the users_select of the Reassign modal
GONE = frozenset({"user_not_found", "users_not_found", "account_inactive", "cannot_dm_bot", "user_disabled"})
RETRYABLE = frozenset({"ratelimited", "internal_error", "fatal_error", "service_unavailable", "request_timeout"})
# Slack escapes a mention as <@U123> or <@U123|name> (the slash command's "Escape channels, users, and links").
LEADING_MENTION = re.compile(r"\s*<@([A-Z0-9]+)(?:\|[^>]*)?>(?=\s|$)")
UNANSWERED = "Vigil could not answer that just now; please try again in a moment."
SIGNATURE_WINDOW = timedelta(minutes=5)  # the SDK's SignatureVerifier accepts a timestamp this far from now


class SlackConfig(BaseModel):
    """An IM app's settings and secrets; the refresh trio is needed only when token rotation is on."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    bot_token: SecretStr = Field(min_length=1)
    signing_secret: SecretStr = Field(min_length=1)
    refresh_token: SecretStr | None = None
    client_id: str = ""
    client_secret: SecretStr | None = None
    base_url: str = "https://slack.com"
    command: str = Field(default="/vigil", pattern=r"^/[a-z0-9_-]{1,31}$")
    timeout: int = Field(default=10, gt=0)


class _At(Clock):
    def __init__(self, now: datetime) -> None:
        self.moment = now.timestamp()

    def now(self) -> float:
        return self.moment


class SlackError(DeliveryError):
    """A DeliveryError that keeps Slack's error code (e.g. `token_expired`, `users_not_found`)."""

    def __init__(self, message: str, code: str, **kw: Any) -> None:
        super().__init__(message, **kw)
        self.code = code


class SlackApi:
    """Web API calls with Slack's errors mapped to DeliveryError; an expired rotating token is refreshed once."""

    def __init__(self, config: SlackConfig, http: aiohttp.ClientSession) -> None:
        self.config = config
        self.client = AsyncWebClient(token=config.bot_token.get_secret_value(), session=http,
                                     base_url=config.base_url.rstrip("/") + "/api/", timeout=config.timeout)
        self._refresh = config.refresh_token.get_secret_value() if config.refresh_token else ""
        self._issued: list[str] = []
        self._lock = asyncio.Lock()

    def secrets(self) -> list[str]:
        cfg = self.config
        return [cfg.bot_token.get_secret_value(), cfg.signing_secret.get_secret_value(), self._refresh,
                cfg.client_secret.get_secret_value() if cfg.client_secret else "", *self._issued]

    async def call(self, method: str, **kw: Any) -> dict[str, Any]:
        """Call a Web API method (e.g. "chat.postMessage") and return its JSON answer."""
        token = self.client.token
        try:
            return await self._send(method, **kw)
        except DeliveryError as exc:
            if not isinstance(exc, SlackError) or exc.code != "token_expired" or not self._refresh:
                raise
        await self._rotate(stale=token)
        return await self._send(method, **kw)

    async def _send(self, method: str, **kw: Any) -> dict[str, Any]:
        try:
            answer = await getattr(self.client, method.replace(".", "_"))(**kw)
            return dict(answer.data)  # type: ignore[arg-type]
        except SlackApiError as exc:
            raise self._error(method, exc) from None
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise DeliveryError(f"slack: {method}: {type(exc).__name__}", retryable=True) from None
        except SlackClientError as exc:
            raise DeliveryError(redact(f"slack: {method}: {exc}"[:300], self.secrets()), retryable=False) from None

    async def _rotate(self, *, stale: str | None) -> None:
        # https://api.slack.com/authentication/rotation: oauth.v2.access with grant_type=refresh_token.
        async with self._lock:
            if self.client.token != stale:
                return  # another call refreshed it meanwhile
            secret = self.config.client_secret.get_secret_value() if self.config.client_secret else ""
            data = await self._send("oauth.v2.access", client_id=self.config.client_id, client_secret=secret,
                                    grant_type="refresh_token", refresh_token=self._refresh)
            self.client.token = str(data.get("access_token", ""))
            self._refresh = str(data.get("refresh_token") or self._refresh)
            self._issued = [*self._issued[-2:], self.client.token, self._refresh]

    def _error(self, method: str, exc: SlackApiError) -> SlackError:
        status = exc.response.status_code
        data = exc.response.data if isinstance(exc.response.data, dict) else {}
        code = str(data.get("error") or f"HTTP {status}")
        message = redact(f"slack: {method}: {code}"[:300], self.secrets())
        if status == 429 or code in RETRYABLE or status >= 500:
            headers = {k.lower(): v for k, v in (exc.response.headers or {}).items()}
            wait = parse_retry_after(headers.get("retry-after"), datetime.now().astimezone())
            return SlackError(message, code, retryable=True, retry_after=wait)
        return SlackError(message, code, retryable=False, gone=code in GONE)


class SlackDirectory:
    """Auto-match by email with users.lookupByEmail (Slack has no lookup by phone)."""

    platform: ClassVar[Platform] = Platform.SLACK

    def __init__(self, api: SlackApi) -> None:
        self.api = api

    async def lookup(self, *, email: str | None, phone: str | None) -> tuple[str, str] | None:
        """The Slack user id of the person with this email, or None."""
        if not email:
            return None
        try:
            data = await self.api.call("users.lookupByEmail", email=email)
        except DeliveryError as exc:
            if isinstance(exc, SlackError) and exc.code == "users_not_found":
                return None
            raise
        user = data.get("user") or {}
        return (str(user["id"]), "user_id") if user.get("id") and not user.get("deleted") else None


class SlackAdapter:
    """Slack Block Kit cards; clicks arrive as signed interactivity requests at /im/slack/callback."""

    platform: ClassVar[Platform] = Platform.SLACK
    docs_url: ClassVar[str] = "https://api.slack.com/interactivity/handling"
    supports_update: ClassVar[bool] = True

    def __init__(self, config: SlackConfig, http: aiohttp.ClientSession) -> None:
        self.config = config
        self.api = SlackApi(config, http)
        self.directory = SlackDirectory(self.api)
        self.bolt = self._bolt_app()

    @classmethod
    def from_app(cls, settings: dict[str, Any], secrets: dict[str, str], *,
                 http: aiohttp.ClientSession) -> SlackAdapter:
        """Build from an IM app row; raises ValueError naming each missing or bad setting (never its value)."""
        leaked = sorted(set(settings) & {"bot_token", "signing_secret", "refresh_token", "client_secret"})
        if leaked:
            raise ValueError(f"slack settings: {', '.join(leaked)} belong in the app's secrets, not its settings")
        try:
            config = SlackConfig(**{**settings, **secrets})
        except ValidationError as exc:
            problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
            raise ValueError(f"slack settings: {problems}") from None
        if config.refresh_token and not (config.client_id and config.client_secret):
            raise ValueError("slack settings: refresh_token needs client_id and client_secret for token rotation")
        return cls(config, http)

    # -- the pure click path ---------------------------------------------------------------------------

    def verify(self, req: InboundRequest, now: datetime) -> bool:
        """Whether X-Slack-Signature is the v0 HMAC of the body and the timestamp is within 5 minutes of now."""
        if not req.header("X-Slack-Request-Timestamp").isdigit():
            return False
        try:
            req.body.decode()  # the SDK decodes the body itself and would raise on bytes Slack never sends
        except UnicodeDecodeError:
            return False
        return SignatureVerifier(self.config.signing_secret.get_secret_value(), _At(now)).is_valid_request(
            req.body, dict(req.headers))

    def precheck(self, req: InboundRequest, now: datetime) -> bool:
        """A v0 signature header and a timestamp within the window (the signature covers the body)."""
        stamp = req.header("X-Slack-Request-Timestamp")
        return (req.header("X-Slack-Signature").startswith("v0=") and stamp.isdigit()
                and abs(now.timestamp() - int(stamp)) <= SIGNATURE_WINDOW.total_seconds())

    def handshake(self, req: InboundRequest) -> HttpReply | None:
        """Answer the Events API url_verification challenge (if this URL is also the event URL)."""
        body = parse_body(req)
        if body.get("type") != "url_verification":
            return None
        return HttpReply(200, json.dumps({"challenge": str(body.get("challenge", ""))}).encode())

    def parse_action(self, req: InboundRequest) -> ActionEvent | None:
        """A Vigil button/select click, a Comment/Reassign modal submission or a `/vigil` command, else None."""
        event = to_event(parse_body(req), self.config.command)
        return replace(event, callback=callback_id(req)) if event is not None else None

    def reply(self, req: InboundRequest, outcome: Outcome) -> HttpReply:
        """An empty 200 for interactivity (Slack wants it within 3 s); a slash command gets its answer inline."""
        body = parse_body(req)
        if body.get("command"):
            text = outcome.text or help_text(f"{self.config.command} ")
            return HttpReply(200, json.dumps({"response_type": "ephemeral", "text": text}).encode())
        return HttpReply(200, b"", "text/plain")

    # -- the Web API -------------------------------------------------------------------------------------

    async def send_card(self, to: ChatTarget, card: dict[str, Any]) -> MessageRef:
        """chat.postMessage, into the bot's DM with the user (conversations.open) for a direct target."""
        channel = to.conversation_id
        if to.direct:
            opened = await self.api.call("conversations.open", users=to.conversation_id)
            channel = str((opened.get("channel") or {}).get("id", ""))
        sent = await self._card_call("chat.postMessage", card, channel=channel)
        return MessageRef(Platform.SLACK, str(sent.get("channel", channel)), str(sent["ts"]))

    async def update_card(self, ref: MessageRef, card: dict[str, Any]) -> None:
        """chat.update the posted message in place."""
        await self._card_call("chat.update", card, channel=ref.conversation_id, ts=ref.message_id)

    async def _card_call(self, method: str, card: dict[str, Any], **kw: Any) -> dict[str, Any]:
        try:
            return await self.api.call(method, **kw, **_message(card))
        except SlackError as exc:
            # Slack refuses the whole message when it cannot download one of its images (an alert's image on
            # an intranet): the card goes again with links to the images, so the page is not lost for them.
            if exc.code != "invalid_blocks" or (linked := without_images(card)) is None:
                raise
        log.info("slack: %s refused the card's images; sent with links to them instead", method)
        return await self.api.call(method, **kw, **_message(linked))

    # -- bolt ---------------------------------------------------------------------------------------------

    async def dispatch(self, req: InboundRequest, click: Click, ask: Ask | None = None) -> HttpReply:
        """Let bolt verify and route a callback; listeners answer within 3 s and finish in the background.
        `click` runs an action (bot.chat.clicks.apply), `ask` answers a read-only command (bot.chat.commands)."""
        callback = callback_id(req)

        async def click_once(event: ActionEvent) -> Outcome:  # the click path takes each callback once
            return await click(replace(event, callback=callback))

        bolt_req = AsyncBoltRequest(body=req.body.decode("utf-8", "replace"), headers=dict(req.headers),
                                    query=dict(req.query), context={"vigil_click": click_once, "vigil_ask": ask})
        resp = await self.bolt.async_dispatch(bolt_req)
        ctype = next(iter(resp.headers.get("content-type") or ["text/plain"]))
        headers = {k: ", ".join(v) for k, v in resp.headers.items() if k != "content-type"}
        return HttpReply(resp.status, resp.body.encode(), ctype, headers)

    def _bolt_app(self) -> AsyncApp:
        async def authorize(enterprise_id: str | None, team_id: str | None) -> AuthorizeResult:
            # The current token (it may have been rotated), without an auth.test round trip per request.
            return AuthorizeResult(enterprise_id=enterprise_id, team_id=team_id, bot_token=self.api.client.token)

        # A tokenless client: bolt takes the token from `authorize`; base_url keeps a test fake in the loop.
        client = AsyncWebClient(base_url=self.api.client.base_url, session=self.api.client.session,
                                timeout=self.config.timeout)
        app = AsyncApp(signing_secret=self.config.signing_secret.get_secret_value(), authorize=authorize,
                       client=client, logger=log)
        command = self.config.command

        @app.action(VIGIL_ID)  # type: ignore[misc]
        async def on_action(ack: Any, body: dict[str, Any], respond: Any, context: Any) -> None:
            await ack()
            event = to_event(body, command)
            if event is None:
                return
            if event.context.get("action_id") in MODAL_IDS:
                await self._safely(self.api.call("views.open", trigger_id=event.context["trigger_id"],
                                                 view=modal(event)))
                return
            outcome = await context["vigil_click"](event)
            if outcome.view is not None:  # Timeline: a modal for the clicker alone, opened within trigger_id's 3 s
                await self._safely(self.api.call("views.open", trigger_id=event.context["trigger_id"],
                                                 view=outcome.view))
                return
            if respond is None:  # no response_url (not a message click): card_sync still updates the card
                return
            if outcome.card is not None:
                await self._safely(respond(replace_original=True, **_message(outcome.card)))
            if outcome.text:  # a callback seen before is answered with nothing at all
                await self._safely(respond(text=outcome.text, response_type="ephemeral", replace_original=False))

        @app.view(VIGIL_ID)  # type: ignore[misc]
        async def on_submit(ack: Any, body: dict[str, Any], context: Any) -> None:
            await ack()  # closes the modal; the outcome is posted as an ephemeral message
            event = to_event(body, command)
            if event is None:
                return
            outcome = await context["vigil_click"](event)
            channel, ts = event.context.get("channel", ""), event.context.get("ts", "")
            if outcome.card is not None and channel and ts:
                await self._safely(self.api.call("chat.update", channel=channel, ts=ts, **_message(outcome.card)))
            if channel and outcome.text:
                await self._safely(self.api.call("chat.postEphemeral", channel=channel, user=event.im_user_id,
                                                 text=outcome.text))

        @app.command(command)  # type: ignore[misc]
        async def on_command(ack: Any, body: dict[str, Any], respond: Any, context: Any) -> None:
            query, ask = to_query(body, command), context.get("vigil_ask")
            if query is not None:
                await ack()  # within Slack's 3 s; the answer follows through response_url
                try:
                    text = escape(await ask(query)) if ask is not None else UNANSWERED
                except Exception:  # the asker still hears back; the cause goes to the log
                    log.exception("slack: %s %s failed", command, query.name)
                    text = UNANSWERED
                if respond is not None:
                    await self._safely(respond(text=text, response_type="ephemeral"))
                return
            event = to_event(body, command)
            if event is None:
                await ack(response_type="ephemeral", text=command_help(str(body.get("text", "")), command))
                return
            await ack()
            outcome = await context["vigil_click"](event)
            if respond is not None and outcome.text:
                await self._safely(respond(text=outcome.text, response_type="ephemeral"))

        return app

    async def _safely(self, call: Any) -> None:
        # After the ack nobody waits for us: a failed follow-up is logged, and card_sync still updates the card.
        try:
            await call
        except (DeliveryError, SlackClientError, aiohttp.ClientError, TimeoutError) as exc:
            log.warning("slack follow-up failed: %s", redact(str(exc)[:300], self.api.secrets()))



def callback_id(req: InboundRequest) -> CallbackId:
    """A Slack callback's id: the hash of its body as the signature check reads it (decoded, as bolt does),
    which carries Slack's own unique trigger_id / action_ts. Not the X-Slack-Signature header: sent twice, the
    SDK checks the last one while a lookup here could read the first, and a replayer could vary that one."""
    text = req.body.decode("utf-8", "replace")
    return CallbackId(hashlib.sha256(text.encode()).hexdigest(), replayable_for(SIGNATURE_WINDOW))


def parse_body(req: InboundRequest) -> dict[str, Any]:
    """The callback body as bolt sees it: JSON, a form, or a form whose `payload` field is JSON."""
    text = req.body.decode("utf-8", "replace")
    try:
        if text.lstrip().startswith("{"):
            body = json.loads(text)
            return body if isinstance(body, dict) else {}
        form = {k: v[0] for k, v in parse_qs(text, keep_blank_values=True).items()}
        if "payload" in form:
            body = json.loads(form["payload"])
            return body if isinstance(body, dict) else {}
        return form
    except ValueError:
        return {}


def to_event(body: Mapping[str, Any], command: str = "/vigil") -> ActionEvent | None:
    """The ActionEvent carried by a block_actions, view_submission or slash command body, else None."""
    kind = body.get("type")
    if kind == "block_actions":
        return _block_action(body)
    if kind == "view_submission":
        return _submission(body)
    if body.get("command") == command and isinstance(body.get("user_id"), str) and body["user_id"]:
        payload = command_payload(str(body.get("text", "")))
        if payload is None:
            return None
        action, packed, rest = payload
        inputs = {"comment": rest} if action is Action.COMMENT else {}
        context = {"response_url": str(body.get("response_url", "")), "channel": str(body.get("channel_id", ""))}
        return ActionEvent(Platform.SLACK, body["user_id"], packed, inputs, context)
    return None


def _block_action(body: Mapping[str, Any]) -> ActionEvent | None:
    user, actions = _get(body, "user", "id"), body.get("actions")
    if not isinstance(user, str) or not user or not isinstance(actions, list):
        return None
    for action in actions:
        if not isinstance(action, dict) or not VIGIL_ID.match(str(action.get("action_id", ""))):
            continue
        # Buttons carry the payload as their value; the snooze static_select in the chosen option's value; a
        # custom field's select in its block's id, with the chosen options beside it.
        inputs: dict[str, str] = {}
        if action.get("action_id") == SET_FIELD:
            value, inputs = field_choice(action)
        else:
            value = action.get("value") or _get(action, "selected_option", "value")
        if not isinstance(value, str) or not value:
            return None
        context = {"action_id": action["action_id"], "trigger_id": str(body.get("trigger_id", "")),
                   "response_url": str(body.get("response_url", "")), "channel": str(_get(body, "channel", "id") or ""),
                   "ts": str(_get(body, "container", "message_ts") or _get(body, "message", "ts") or "")}
        return ActionEvent(Platform.SLACK, user, value, inputs, context)
    return None


def field_choice(action: Mapping[str, Any]) -> tuple[str, dict[str, str]]:
    """A custom field select's payload (its block's id) and the positions of the options now chosen: a
    static_select's one, a multi_static_select's or checkboxes' every one (none: the field is cleared)."""
    block = str(action.get("block_id", ""))
    picked = action.get("selected_options")
    if not isinstance(picked, list):
        one = action.get("selected_option")
        picked = [one] if isinstance(one, dict) else []
    positions = [str(o.get("value", "")) for o in picked if isinstance(o, dict)]
    return (block[len(FIELD_BLOCK):] if block.startswith(FIELD_BLOCK) else ""), {"options": ",".join(positions)}


def _submission(body: Mapping[str, Any]) -> ActionEvent | None:
    user, view = _get(body, "user", "id"), body.get("view")
    if not isinstance(user, str) or not user or not isinstance(view, dict):
        return None
    try:
        meta = json.loads(view.get("private_metadata") or "{}")
    except ValueError:
        return None
    values = _get(view, "state", "values") or {}
    if not isinstance(meta, dict) or not isinstance(meta.get("payload"), str) or not isinstance(values, dict):
        return None
    context = {"channel": str(meta.get("channel", "")), "ts": str(meta.get("ts", ""))}
    if view.get("callback_id") == COMMENT:
        text = _get(values, COMMENT, COMMENT, "value")
        return ActionEvent(Platform.SLACK, user, meta["payload"], {"comment": str(text or "")}, context)
    if view.get("callback_id") == REASSIGN:
        # A Slack user id, not a member id: clicks.apply must resolve it through the mapping table.
        picked = _get(values, MEMBER_INPUT, MEMBER_INPUT, "selected_user")
        return ActionEvent(Platform.SLACK, user, meta["payload"], {"assignee_im_user_id": str(picked or "")},
                           context)
    return None


def to_query(body: Mapping[str, Any], command: str = "/vigil") -> Query | None:
    """`/vigil oncall`, `/vigil mine` (read-only) or `/vigil page @someone <title>` as a Query, else None."""
    words = str(body.get("text", "")).split(maxsplit=1)
    user = body.get("user_id")
    if body.get("command") != command or not isinstance(user, str) or not user or not words:
        return None
    name = words[0].lower()
    if name == PAGE:
        mentions, rest = page_mentions(words[1] if len(words) > 1 else "")
        return Query(Platform.SLACK, user, name, rest, mentions)
    return Query(Platform.SLACK, user, name) if name in QUERIES and len(words) == 1 else None


def page_mentions(text: str) -> tuple[tuple[str, ...], str]:
    """The Slack user ids of the escaped mentions `page` starts with, and the words after them."""
    users, rest = [], text
    while m := LEADING_MENTION.match(rest):
        users.append(m.group(1))
        rest = rest[m.end():]
    return tuple(users), rest.strip()


def command_help(text: str, command: str = "/vigil") -> str:
    """The answer to a command text that is neither an incident action nor a query: the command list."""
    return not_understood(text, f"{command} ", quote=escape)


def escape(text: str) -> str:
    """Plain text for a Slack message: &, < and > escaped, so nothing in it is read as a link or a mention."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def modal(event: ActionEvent) -> dict[str, Any]:
    """The Comment or Reassign modal for a button click; its submission comes back as a view_submission."""
    meta = json.dumps({"payload": event.payload, "channel": event.context.get("channel", ""),
                       "ts": event.context.get("ts", "")})
    if event.context.get("action_id") == COMMENT:
        title, submit, block_id, element = "Comment", "Add comment", COMMENT, {
            "type": "plain_text_input", "action_id": COMMENT, "multiline": True, "max_length": 3000}
    else:
        title, submit, block_id, element = "Reassign", "Reassign", MEMBER_INPUT, {
            "type": "users_select", "action_id": MEMBER_INPUT, "placeholder": _plain("Pick a person")}
    return {"type": "modal", "callback_id": event.context.get("action_id", COMMENT), "private_metadata": meta,
            "title": _plain(title), "submit": _plain(submit), "close": _plain("Cancel"),
            "blocks": [{"type": "input", "block_id": block_id, "label": _plain(title), "element": element}]}


def _message(card: Mapping[str, Any]) -> dict[str, Any]:
    if not isinstance(card.get("text"), str):
        raise DeliveryError("slack: the card is not a Slack message (it has no `text`)", retryable=False)
    return {k: card[k] for k in ("text", "attachments", "blocks") if k in card}


def _plain(text: str) -> dict[str, Any]:
    return {"type": "plain_text", "text": text}


def _get(obj: Any, *keys: str) -> Any:
    for key in keys:
        if not isinstance(obj, Mapping):
            return None
        obj = obj.get(key)
    return obj
