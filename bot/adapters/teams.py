"""Microsoft Teams: Adaptive Cards with Universal Actions, posted proactively through the Bot Connector API;
chat commands as `message` activities to the bot (the same messaging endpoint), answered in the conversation.

Docs: https://learn.microsoft.com/microsoftteams/platform/bots/how-to/conversations/send-proactive-messages
(create a 1:1 conversation, then post), https://learn.microsoft.com/azure/bot-service/rest-api/bot-framework-rest-connector-authentication
(inbound JWT checks), https://learn.microsoft.com/microsoftteams/platform/task-modules-and-cards/cards/universal-actions-for-adaptive-cards/work-with-universal-actions-for-adaptive-cards
(the `adaptiveCard/action` invoke and its response), https://learn.microsoft.com/graph/api/user-get (directory).

Sending uses botframework-connector's async ConnectorClient with botbuilder.schema models. Two SDK parts are
replaced, both because they block the event loop: MicrosoftAppCredentials gets its token from MSAL (sync
`requests`, https-only authorities found by instance discovery), so `AppTokens` fetches the client-credentials
token from settings["token_url"] over our aiohttp session and hands it to the credentials; and the SDK's
JwtTokenExtractor keeps a process-global key cache filled with sync `requests`, so `verify()` checks the JWT
with PyJWT against the JWKS that `prepare()` fetched from settings["openid_metadata_url"] (same rules: issuer,
audience = app id, RS256/384/512, 5 minutes of clock skew, key endorsement of the channel, serviceurl claim).
"""

from __future__ import annotations

import asyncio
import hashlib
import html
import json
import logging
import re
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar, TypeVar
from urllib.parse import quote

import aiohttp
import jwt
import orjson
from botbuilder.schema import (
    Activity,
    ActivityTypes,
    Attachment,
    ChannelAccount,
    ConversationAccount,
    ConversationParameters,
    TextFormatTypes,
)
from botframework.connector.aio import ConnectorClient
from botframework.connector.auth import MicrosoftAppCredentials
from msrest.exceptions import ClientRequestError, DeserializationError, HttpOperationError, SerializationError
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError

from bot.adapters._http import error_for_status, parse_retry_after, redact, send_request
from bot.adapters.base import (
    ActionEvent,
    CallbackId,
    ChatMessage,
    ChatTarget,
    Click,
    Heard,
    HttpReply,
    InboundRequest,
    MessageRef,
    Outcome,
)
from bot.adapters.errors import DeliveryError
from bot.cards.teams import FIELD_INPUT
from bot.egress import EgressRefused, policy_of, preflight
from core.types import Platform

log = logging.getLogger("vigil.teams")
T = TypeVar("T")
CARD_TYPE = "application/vnd.microsoft.card.adaptive"
MESSAGE_TYPE = "application/vnd.microsoft.activity.message"
ISSUER = "https://api.botframework.com"  # AuthenticationConstants.TO_BOT_FROM_CHANNEL_TOKEN_ISSUER
ALGORITHMS = ["RS256", "RS384", "RS512"]  # AuthenticationConstants.ALLOWED_SIGNING_ALGORITHMS
CLOCK_SKEW_S = 300  # ChannelValidation's clock_tolerance
TOKEN_LIFETIME_UNKNOWN = timedelta(days=1)  # replay cache time for a token without nbf / iat (never seen)
KEYS_MAX_AGE_S = 24 * 3600  # the SDK refreshes signing keys daily...
KEYS_RETRY_S = 300  # ...and at most this often when a token names an unknown key
BOT_SCOPE = "https://api.botframework.com/.default"
AT_TAG = re.compile(r"<at>.*?</at>", re.S)  # a mention as Teams writes it into a message's text
GRAPH_SCOPE = "https://graph.microsoft.com/.default"


class TeamsConfig(BaseModel):
    """An IM app's settings (endpoints, tenant) and secrets (the bot's app id and password)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    app_id: str = Field(min_length=1)
    app_password: SecretStr = Field(min_length=1)
    tenant_id: str = Field(min_length=1)
    service_url: str = "https://smba.trafficmanager.net/teams/"
    token_url: str = "https://login.microsoftonline.com/botframework.com/oauth2/v2.0/token"
    graph_token_url: str = ""  # default: the tenant's own token endpoint (Graph needs a tenant token)
    openid_metadata_url: str = "https://login.botframework.com/v1/.well-known/openidconfiguration"
    graph_base_url: str = "https://graph.microsoft.com"
    timeout: float = Field(default=10.0, gt=0)

    def graph_token_endpoint(self) -> str:
        return self.graph_token_url or f"https://login.microsoftonline.com/{self.tenant_id}/oauth2/v2.0/token"


class AppTokens:
    """Client-credentials tokens for one scope, cached until shortly before expiry and refreshed on demand."""

    def __init__(self, config: TeamsConfig, http: aiohttp.ClientSession, url: str, scope: str) -> None:
        self.config, self.http, self.url, self.scope = config, http, url, scope
        self._token: tuple[str, float] | None = None
        self.issued: list[str] = []  # recent tokens, redacted from errors
        self._lock = asyncio.Lock()

    async def get(self, *, stale: str | None = None) -> str:
        """A valid token; `stale` names one the platform just rejected, forcing a new one."""
        async with self._lock:
            if self._token and self._token[0] != stale and time.monotonic() < self._token[1]:
                return self._token[0]
            secrets = [self.config.app_password.get_secret_value(), *self.issued]
            reply = await send_request(self.http, "POST", self.url, provider="teams", timeout=self.config.timeout,
                                       secrets=secrets, data={
                                           "grant_type": "client_credentials", "client_id": self.config.app_id,
                                           "client_secret": self.config.app_password.get_secret_value(),
                                           "scope": self.scope})
            data = reply.json()
            data = data if isinstance(data, dict) else {}
            if not reply.ok or not data.get("access_token"):
                raise error_for_status("teams", reply, f"app token: {data.get('error', 'no access_token')}", secrets)
            ttl = max(60, int(data.get("expires_in", 3600)) - 300)  # renew early so no call races expiry
            self._token = (str(data["access_token"]), time.monotonic() + ttl)
            self.issued = [*self.issued[-2:], self._token[0]]
            return self._token[0]


class _Credentials(MicrosoftAppCredentials):
    """MicrosoftAppCredentials signing with the token `AppTokens` fetched, instead of MSAL's blocking call."""

    def __init__(self, app_id: str) -> None:
        super().__init__(app_id, "")
        self.token = ""

    def get_access_token(self, force_refresh: bool = False) -> str:
        return self.token


class SigningKeys:
    """The Bot Connector's signing keys (JWKS named by the OpenID metadata), fetched asynchronously and cached."""

    def __init__(self, config: TeamsConfig, http: aiohttp.ClientSession) -> None:
        self.config, self.http = config, http
        self.keys: dict[str, tuple[Any, list[str]]] = {}  # kid -> (public key, endorsed channel ids)
        self.fetched_at = 0.0
        self._tried_at = -KEYS_RETRY_S
        self._refreshing: asyncio.Task[None] | None = None

    async def refresh(self) -> None:
        """Fetch the metadata and its JWKS; raises DeliveryError when either cannot be read."""
        self._tried_at = time.monotonic()
        meta = await self._json(self.config.openid_metadata_url)
        jwks = await self._json(str(meta.get("jwks_uri") or ""))
        keys = {}
        for jwk in jwks.get("keys") or []:
            try:
                keys[str(jwk["kid"])] = (jwt.PyJWK(jwk, algorithm="RS256").key, list(jwk.get("endorsements") or []))
            except (KeyError, jwt.PyJWTError):
                continue  # a key we cannot use is not one that signed our callbacks
        if not keys:
            raise DeliveryError("teams: the OpenID metadata lists no usable signing keys", retryable=True)
        self.keys, self.fetched_at = keys, time.monotonic()

    def find(self, kid: str) -> tuple[Any, list[str]] | None:
        """The cached key, refreshing in the background when it is unknown or the cache is old."""
        now = time.monotonic()
        if (kid not in self.keys or now - self.fetched_at > KEYS_MAX_AGE_S) and now - self._tried_at > KEYS_RETRY_S:
            self._refresh_soon()
        return self.keys.get(kid)

    def _refresh_soon(self) -> None:
        if self._refreshing is not None and not self._refreshing.done():
            return
        try:
            self._refreshing = asyncio.get_running_loop().create_task(self._refresh_logged())
        except RuntimeError:  # verify() called outside a loop: keep what we have
            return

    async def _refresh_logged(self) -> None:
        try:
            await self.refresh()
        except DeliveryError as exc:
            log.warning("teams: could not refresh signing keys: %s", exc)

    async def _json(self, url: str) -> dict[str, Any]:
        if not url:
            raise DeliveryError("teams: the OpenID metadata has no jwks_uri", retryable=False)
        reply = await send_request(self.http, "GET", url, provider="teams", timeout=self.config.timeout, secrets=[])
        data = reply.json()
        if not reply.ok or not isinstance(data, dict):
            raise error_for_status("teams", reply, "OpenID metadata / keys unreadable", [])
        return data


class TeamsDirectory:
    """Auto-match by email through Microsoft Graph `GET /v1.0/users/{userPrincipalName}` (id = aadObjectId)."""

    platform: ClassVar[Platform] = Platform.TEAMS

    def __init__(self, config: TeamsConfig, http: aiohttp.ClientSession) -> None:
        self.config, self.http = config, http
        self.tokens = AppTokens(config, http, config.graph_token_endpoint(), GRAPH_SCOPE)

    async def lookup(self, *, email: str | None, phone: str | None) -> tuple[str, str] | None:
        """The Azure AD object id of the user signing in as `email`, or None; phones are not searched."""
        if not email:
            return None
        url = f"{self.config.graph_base_url.rstrip('/')}/v1.0/users/{quote(email, safe='@')}"
        stale = None
        for _ in range(2):
            token = await self.tokens.get(stale=stale)
            secrets = [self.config.app_password.get_secret_value(), *self.tokens.issued]
            reply = await send_request(self.http, "GET", url, provider="teams", timeout=self.config.timeout,
                                       secrets=secrets, params={"$select": "id"},
                                       headers={"Authorization": f"Bearer {token}"})
            if reply.status == 401 and stale is None:
                stale = token  # Graph rejected the token: fetch a new one, once
                continue
            if reply.status == 404:
                return None
            data = reply.json() if reply.ok else None
            if not isinstance(data, dict) or not data.get("id"):
                body = reply.json()
                error = body.get("error") if isinstance(body, dict) else None
                code = error.get("code", "") if isinstance(error, dict) else "no user id in the answer"
                raise error_for_status("teams", reply, f"graph user lookup: {code}", secrets)
            return str(data["id"]), "aad_object_id"
        raise DeliveryError("teams: graph rejected a freshly issued token", retryable=False)


class TeamsAdapter:
    """Teams Adaptive Cards sent as proactive 1:1 messages; clicks arrive as `adaptiveCard/action` invokes."""

    platform: ClassVar[Platform] = Platform.TEAMS
    docs_url: ClassVar[str] = "https://learn.microsoft.com/microsoftteams/platform/bots/how-to/conversations/send-proactive-messages"
    supports_update: ClassVar[bool] = True

    def __init__(self, config: TeamsConfig, http: aiohttp.ClientSession) -> None:
        self.config, self.http = config, http
        self.tokens = AppTokens(config, http, config.token_url, BOT_SCOPE)
        self.keys = SigningKeys(config, http)
        self.directory = TeamsDirectory(config, http)
        self.credentials = _Credentials(config.app_id)
        self._clients: dict[str, ConnectorClient] = {}

    @classmethod
    def from_app(cls, settings: dict[str, Any], secrets: dict[str, str], *,
                 http: aiohttp.ClientSession) -> TeamsAdapter:
        """Build from an IM app row; raises ValueError naming each missing or bad setting (never its value)."""
        misplaced = sorted({"app_password"} & set(settings))
        if misplaced:
            raise ValueError(f"teams settings: {', '.join(misplaced)} belong in the app's secrets, not its settings")
        try:
            config = TeamsConfig(**{**settings, **secrets})
        except ValidationError as exc:
            problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
            raise ValueError(f"teams settings: {problems}") from None
        return cls(config, http)

    async def prepare(self) -> None:
        """Fetch the signing keys verify() needs; raises DeliveryError when they cannot be read."""
        await self.keys.refresh()

    async def start(self, click: Click, hear: Heard | None = None) -> None:
        """Called when the IM app is (re)built: load the signing keys, retrying in verify() if that fails.
        Clicks and messages both come to the messaging endpoint (`verify`), never over a connection of ours."""
        try:
            await self.prepare()
        except DeliveryError as exc:
            log.warning("teams: signing keys not loaded yet, callbacks are refused until they are: %s", exc)

    def precheck(self, req: InboundRequest, now: datetime) -> bool:
        """The Bot Connector token is in the headers: its signature, issuer and audience are checked before the
        body is read (the endorsements and serviceUrl it must match are in the body: `verify` checks them)."""
        return self._claims(req) is not None

    def _claims(self, req: InboundRequest) -> tuple[dict[str, Any], list[str]] | None:
        """The token's claims and its key's endorsements, if Bot Framework signed it for our app id."""
        scheme, _, token = req.header("Authorization").partition(" ")
        if scheme != "Bearer" or not token:
            return None
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            return None
        found = self.keys.find(str(header.get("kid") or ""))
        if found is None or header.get("alg") not in ALGORITHMS:
            return None
        key, endorsements = found
        try:
            claims = jwt.decode(token, key, algorithms=ALGORITHMS, audience=self.config.app_id, issuer=ISSUER,
                                options={"verify_exp": False, "verify_nbf": False, "verify_iat": False,
                                         "require": ["exp", "iss", "aud"]})
        except jwt.PyJWTError:
            return None
        return claims, list(endorsements or [])

    def verify(self, req: InboundRequest, now: datetime) -> bool:
        """A Bot Connector JWT in `Authorization: Bearer`, signed by a current key endorsed for the activity's
        channel, issued by the Bot Framework for our app id, unexpired, naming the activity's serviceUrl."""
        activity = _activity(req.body)
        checked = self._claims(req) if activity is not None else None
        if checked is None:
            return False
        claims, endorsements = checked
        if endorsements and activity.get("channelId") not in endorsements:
            return False
        # Expiry is checked against `now`, not the process clock, so the decision stays testable.
        exp, nbf, ts = claims.get("exp"), claims.get("nbf", 0), now.timestamp()
        if not isinstance(exp, int | float) or not isinstance(nbf, int | float):
            return False
        if exp + CLOCK_SKEW_S < ts or nbf - CLOCK_SKEW_S > ts:
            return False
        return bool(claims.get("serviceurl")) and claims.get("serviceurl") == activity.get("serviceUrl")

    def handshake(self, req: InboundRequest) -> HttpReply | None:
        """Teams has no URL verification: the messaging endpoint is registered in the Azure bot resource."""
        return None

    def parse_action(self, req: InboundRequest) -> ActionEvent | None:
        """An `adaptiveCard/action` invoke: from.aadObjectId, data.action (packed payload), and the snooze
        choice / comment text the card's inputs merged into `data`."""
        raw = _activity(req.body)
        if raw is None or raw.get("type") != ActivityTypes.invoke or raw.get("name") != "adaptiveCard/action":
            return None
        try:
            activity = Activity().deserialize(raw)
        except DeserializationError:  # a field of the wrong shape: not an activity Teams sent
            return None
        action = (activity.value or {}).get("action") if isinstance(activity.value, dict) else None
        user = activity.from_property.aad_object_id if activity.from_property else None
        if not isinstance(action, dict) or action.get("type") != "Action.Execute" or not user:
            return None
        data, verb = action.get("data"), str(action.get("verb") or "")
        if not isinstance(data, dict) or not isinstance(data.get("action"), str) or not data["action"]:
            return None
        inputs = {}
        # Inputs of a card may travel with any of its actions: only the matching verb uses them.
        if verb == "snooze" and isinstance(data.get("snooze"), str) and data["snooze"]:
            inputs["snooze"] = data["snooze"]
        if verb == "comment" and isinstance(data.get("comment"), str):
            inputs["comment"] = data["comment"]
        if verb == "set_field":  # a custom field's "Set": the value of the input its data names (bot/cards/teams.py)
            field_input, chosen = data.get("field"), None
            if isinstance(field_input, str) and field_input.startswith(FIELD_INPUT):
                chosen = data.get(field_input)
            if not isinstance(chosen, str):
                return None  # without its input the choice is unknown: never read it as "cleared"
            inputs["options"] = chosen
        conversation = activity.conversation.id if activity.conversation else ""
        # The token signs no body, and the Bot Connector sends the same token for an hour of activities: the
        # activity id is what tells one callback from another.
        key = str(raw.get("id") or hashlib.sha256(req.body).hexdigest())
        callback = CallbackId(key, replayable_for_token(req.header("Authorization")))
        return ActionEvent(Platform.TEAMS, user, data["action"], inputs, {
            "verb": verb, "conversation_id": conversation or "", "activity_id": activity.reply_to_id or "",
            "service_url": activity.service_url or ""}, callback)

    def parse_message(self, req: InboundRequest) -> ChatMessage | None:
        """A `message` activity to the bot: from.aadObjectId, the text without its `<at>` mentions, and the AAD
        object ids of the people mentioned (the bot's own mention, the recipient, left out)."""
        raw = _activity(req.body)
        if raw is None or raw.get("type") != ActivityTypes.message:
            return None
        try:
            activity = Activity().deserialize(raw)
        except DeserializationError:
            return None
        user = activity.from_property.aad_object_id if activity.from_property else None
        if not user or not isinstance(activity.text, str) or not activity.conversation or not activity.id:
            return None
        bot = activity.recipient.id if activity.recipient else None
        text, mentions = activity.text, []
        for entity in raw.get("entities") or []:
            if not isinstance(entity, dict) or entity.get("type") != "mention":
                continue
            mentioned = entity.get("mentioned") if isinstance(entity.get("mentioned"), dict) else {}
            if isinstance(entity.get("text"), str) and entity["text"]:
                text = text.replace(entity["text"], " ", 1)
            person = mentioned.get("aadObjectId")
            if mentioned.get("id") != bot and isinstance(person, str) and person:
                mentions.append(person)
        words = " ".join(html.unescape(AT_TAG.sub(" ", text)).split())
        callback = CallbackId(str(activity.id), replayable_for_token(req.header("Authorization")))
        return ChatMessage(Platform.TEAMS, user, words, tuple(mentions), context={
            "conversation_id": activity.conversation.id or "", "activity_id": activity.id,
            "service_url": activity.service_url or ""}, callback=callback)

    async def send_reply(self, message: ChatMessage, text: str) -> None:
        """Reply in the message's conversation as plain text (no markdown, so a title is shown as typed)."""
        conversation, activity_id = str(message.context["conversation_id"]), str(message.context["activity_id"])
        answer = Activity(type=ActivityTypes.message, text=text, text_format=TextFormatTypes.plain,
                          reply_to_id=activity_id, conversation=ConversationAccount(id=conversation),
                          from_property=ChannelAccount(id=f"28:{self.config.app_id}"))
        # The serviceUrl was named by the verified token's serviceurl claim (verify).
        await self._call(str(message.context.get("service_url") or self.config.service_url),
                         lambda c: c.conversations.reply_to_activity(conversation, activity_id, answer))

    def reply(self, req: InboundRequest, outcome: Outcome) -> HttpReply:
        """The invoke response: the updated card when the click worked, else a message with the reason."""
        raw = _activity(req.body) or {}
        if raw.get("type") != ActivityTypes.invoke:
            return HttpReply(200, b"")  # messages and conversation updates need only a 200
        # The shape of botbuilder's AdaptiveCardInvokeResponse, whose model types `value` as an object only.
        if outcome.ok and outcome.card is not None:
            answer: dict[str, Any] = {"statusCode": 200, "type": CARD_TYPE, "value": outcome.card}
        else:
            answer = {"statusCode": 200, "type": MESSAGE_TYPE, "value": outcome.text or "Done."}
        return HttpReply(200, orjson.dumps(answer))

    async def send_card(self, to: ChatTarget, card: dict[str, Any]) -> MessageRef:
        """Open (or reuse) the 1:1 conversation with the user's aadObjectId and post the card; a chat or channel
        id given as a group target is posted to directly."""
        conversation, service_url = to.conversation_id, self.config.service_url
        if to.direct:
            params = ConversationParameters(
                is_group=False, bot=ChannelAccount(id=f"28:{self.config.app_id}"),
                members=[ChannelAccount(id=to.conversation_id)], tenant_id=self.config.tenant_id,
                channel_data={"tenant": {"id": self.config.tenant_id}})
            created = await self._call(service_url, lambda c: c.conversations.create_conversation(params), gone=True)
            conversation, service_url = created.id, created.service_url or service_url
        sent = await self._call(service_url, lambda c: c.conversations.send_to_conversation(
            conversation, _card_activity(card)), gone=to.direct)
        return MessageRef(self.platform, conversation, str(sent.id), {"service_url": service_url})

    async def update_card(self, ref: MessageRef, card: dict[str, Any]) -> None:
        """Replace the posted card with PUT /v3/conversations/{id}/activities/{activityId}."""
        activity = _card_activity(card)
        activity.id = ref.message_id
        await self._call(str(ref.extra.get("service_url") or self.config.service_url),
                         lambda c: c.conversations.update_activity(ref.conversation_id, ref.message_id, activity))

    async def _call(self, service_url: str, op: Callable[[ConnectorClient], Awaitable[T]], *,
                    gone: bool = False) -> T:
        # botframework's ConnectorClient sends through msrest (requests), not our guarded session; and a
        # service_url may come from a callback. Resolve it first: go ahead only if the policy allows it.
        try:
            await preflight(service_url, policy_of(self.http))
        except EgressRefused as exc:
            raise DeliveryError(f"teams: {exc}", retryable=False) from None
        except OSError as exc:
            raise DeliveryError(f"teams: connector unreachable ({type(exc).__name__})", retryable=True) from None
        client = self._clients.get(service_url)
        if client is None:
            client = self._clients[service_url] = ConnectorClient(self.credentials, base_url=service_url)
            client.config.connection.timeout = self.config.timeout
        stale = None
        while True:
            token = await self.tokens.get(stale=stale)
            self.credentials.token = token
            try:
                return await op(client)
            except HttpOperationError as exc:
                status = exc.response.status_code if exc.response is not None else 0
                if status == 401 and stale is None:
                    stale = token  # the Connector rejected the token: fetch a new one, once
                    continue
                raise self._error(exc, status, gone) from None
            except ClientRequestError as exc:
                raise DeliveryError(f"teams: connector unreachable ({type(exc.inner_exception).__name__})",
                                    retryable=True) from None
            except SerializationError:
                raise DeliveryError("teams: the card could not be serialised", retryable=False) from None

    def _error(self, exc: HttpOperationError, status: int, gone: bool) -> DeliveryError:
        error = getattr(getattr(exc, "error", None), "error", None)
        code, text = getattr(error, "code", "") or "", getattr(error, "message", "") or ""
        retryable = status in (408, 429) or status >= 500
        headers = exc.response.headers if exc.response is not None else {}
        retry_after = parse_retry_after(headers.get("Retry-After"), datetime.now(UTC)) if retryable else None
        secrets = [self.config.app_password.get_secret_value(), *self.tokens.issued]
        message = redact(f"teams: HTTP {status}: {code} {text}".strip()[:300], secrets)
        return DeliveryError(message, retryable=retryable, retry_after=retry_after,
                             gone=gone and status in (403, 404))


def replayable_for_token(authorization: str) -> timedelta:
    """How long after it arrives a copy of a callback could pass `verify` with the same Bot Connector token: its
    lifetime (nbf or iat to exp) plus the clock skew allowed at both ends. Read after verify() checked it."""
    try:
        claims = jwt.decode(authorization.partition(" ")[2], options={"verify_signature": False})
    except jwt.PyJWTError:
        return TOKEN_LIFETIME_UNKNOWN
    exp, start = claims.get("exp"), claims.get("nbf", claims.get("iat"))
    if not isinstance(exp, int | float) or not isinstance(start, int | float) or exp < start:
        return TOKEN_LIFETIME_UNKNOWN
    return timedelta(seconds=exp - start + 2 * CLOCK_SKEW_S)


def _card_activity(card: dict[str, Any]) -> Activity:
    if card.get("type") != "AdaptiveCard":
        raise DeliveryError("teams: card must be the Teams renderer's AdaptiveCard", retryable=False)
    return Activity(type=ActivityTypes.message, summary=card.get("fallbackText"),
                    attachments=[Attachment(content_type=CARD_TYPE, content=card)])


def _activity(body: bytes) -> dict[str, Any] | None:
    try:
        data = json.loads(body)
    except ValueError:
        return None
    return data if isinstance(data, dict) else None
