"""A local fake of the Microsoft services a Teams bot talks to, written from Microsoft's docs independently
of the adapter: the Azure AD v2 token endpoint (client credentials), the Bot Connector REST API
(/v3/conversations...), Microsoft Graph users, and the Bot Framework OpenID metadata + JWKS, plus an
`Issuer` that signs inbound activities with an RSA key exactly as the Bot Connector does (RS256 JWT,
iss https://api.botframework.com, aud = app id, serviceurl claim, endorsed key).

Error shapes: AAD `{"error": "invalid_client", "error_description": "AADSTS...", "error_codes": [...]}`;
Connector `{"error": {"code": ..., "message": ...}}` (401: `{"message": "Authorization has been denied..."}`);
Graph `{"error": {"code": "Request_ResourceNotFound", "message": ..., "innerError": {...}}}`.
"""

from __future__ import annotations

import base64
import itertools
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import jwt
import orjson
from aiohttp import web
from cryptography.hazmat.primitives.asymmetric import rsa

BOT_ISSUER = "https://api.botframework.com"
BOT_SCOPE = "https://api.botframework.com/.default"
GRAPH_SCOPE = "https://graph.microsoft.com/.default"
BOT_TENANT = "botframework.com"
CARD_TYPE = "application/vnd.microsoft.card.adaptive"


def _b64(n: int) -> str:
    return base64.urlsafe_b64encode(n.to_bytes((n.bit_length() + 7) // 8, "big")).rstrip(b"=").decode()


@dataclass
class Issuer:
    """The Bot Connector's signing side: an RSA key published in the JWKS, and tokens/activities it signs."""

    key: rsa.RSAPrivateKey = field(default_factory=lambda: rsa.generate_private_key(public_exponent=65537,
                                                                                  key_size=2048))
    kid: str = field(default_factory=lambda: uuid.uuid4().hex[:16])
    endorsements: list[str] = field(default_factory=lambda: ["msteams", "webchat"])

    def jwk(self) -> dict[str, Any]:
        numbers = self.key.public_key().public_numbers()
        return {"kty": "RSA", "use": "sig", "kid": self.kid, "x5t": self.kid, "n": _b64(numbers.n),
                "e": _b64(numbers.e), "endorsements": self.endorsements}

    def token(self, app_id: str, service_url: str, *, now: float | None = None, ttl: int = 3600,
              issuer: str = BOT_ISSUER, kid: str | None = None) -> str:
        """A channel-to-bot JWT as the Bot Connector sends it in `Authorization: Bearer`."""
        iat = int(now if now is not None else time.time())
        claims = {"serviceurl": service_url, "nbf": iat - 5, "exp": iat + ttl, "iss": issuer, "aud": app_id}
        return jwt.encode(claims, self.key, algorithm="RS256", headers={"kid": kid or self.kid, "typ": "JWT"})


def invoke_activity(user_aad: str, verb: str, data: dict[str, Any], *, service_url: str,
                    conversation_id: str = "a:1-personal-chat", reply_to_id: str = "1715000000001",
                    tenant_id: str = "tenant-1", channel_id: str = "msteams") -> dict[str, Any]:
    """The `adaptiveCard/action` invoke Teams posts when a user clicks an Action.Execute button."""
    return {
        "type": "invoke", "name": "adaptiveCard/action", "id": f"f:{uuid.uuid4().hex}", "channelId": channel_id,
        "serviceUrl": service_url, "timestamp": "2024-05-01T12:00:00.000Z", "locale": "en-US",
        "from": {"id": f"29:1{user_aad}", "name": "Someone", "aadObjectId": user_aad},
        "conversation": {"conversationType": "personal", "tenantId": tenant_id, "id": conversation_id},
        "recipient": {"id": "28:bot", "name": "Vigil"}, "replyToId": reply_to_id,
        "channelData": {"tenant": {"id": tenant_id}, "source": {"name": "message"}},
        "value": {"action": {"type": "Action.Execute", "verb": verb, "data": data}, "trigger": "manual"},
    }


def signed_callback(signer: Issuer, app_id: str, activity: dict[str, Any], **token: Any) -> tuple[dict[str, str],
                                                                                                  bytes]:
    """Headers and body of a callback POSTed by the Bot Connector, signed for `app_id`."""
    bearer = signer.token(app_id, activity["serviceUrl"], **token)
    return {"Authorization": f"Bearer {bearer}", "Content-Type": "application/json"}, orjson.dumps(activity)


@dataclass
class Recorded:
    """One accepted request: method, path and JSON body."""

    method: str
    path: str
    body: Any


@dataclass
class FakeTeams:
    app_id: str
    app_password: str
    tenant_id: str
    users: dict[str, str] = field(default_factory=dict)  # userPrincipalName -> aadObjectId (installed the app)
    issuer: Issuer = field(default_factory=Issuer)
    requests: list[Recorded] = field(default_factory=list)
    cards: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)  # (conversation, activity) -> card
    tokens_issued: int = 0
    script: deque[web.Response] = field(default_factory=deque)
    _tokens: dict[str, str] = field(default_factory=dict)  # access token -> scope
    _conversations: dict[str, str] = field(default_factory=dict)  # conversation id -> aadObjectId
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1715000000000))
    # Team channels and group chats (19:...@thread...) the app is installed in: posted to directly, no create.
    channels: set[str] = field(default_factory=set)
    replies: list[dict[str, Any]] = field(default_factory=list)  # {conversation, reply_to, text, textFormat}
    _received: set[tuple[str, str]] = field(default_factory=set)  # (conversation, activity) users sent the bot

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/v1/.well-known/openidconfiguration", self._metadata)
        app.router.add_get("/v1/.well-known/keys", self._keys)
        app.router.add_post("/{tenant}/oauth2/v2.0/token", self._token)
        app.router.add_post("/v3/conversations", self._create)
        app.router.add_post("/v3/conversations/{conversation}/activities", self._send)
        app.router.add_put("/v3/conversations/{conversation}/activities/{activity}", self._update)
        app.router.add_post("/v3/conversations/{conversation}/activities/{activity}", self._reply)
        app.router.add_get("/v1.0/users/{user}", self._user)
        return app

    # -- scripting and inspection ---------------------------------------------------------------------

    def fail_next(self, status: int, code: str = "ServiceError", message: str = "something failed",
                  headers: dict[str, str] | None = None) -> None:
        """Answer the next Connector or Graph call with this HTTP error in the service's JSON shape."""
        body = {"message": "Authorization has been denied for this request."} if status == 401 else {
            "error": {"code": code, "message": message}}
        self.script.append(web.json_response(body, status=status, headers=headers))

    def expire_tokens(self) -> None:
        """Every access token issued so far is now rejected with 401."""
        self._tokens.clear()

    def user_left(self, upn: str) -> None:
        self.users.pop(upn, None)

    def of(self, method: str, prefix: str) -> list[Recorded]:
        return [r for r in self.requests if r.method == method and r.path.startswith(prefix)]

    def created(self) -> list[Recorded]:
        return [r for r in self.requests if r.method == "POST" and r.path == "/v3/conversations"]

    def sent(self) -> list[Recorded]:
        return [r for r in self.of("POST", "/v3/conversations/") if r.path.endswith("/activities")]

    def updates(self) -> list[Recorded]:
        return self.of("PUT", "/v3/conversations/")

    # -- handlers ------------------------------------------------------------------------------------------

    async def _metadata(self, request: web.Request) -> web.Response:
        base = str(request.url.origin())
        return web.json_response({"issuer": BOT_ISSUER, "authorization_endpoint": "https://invalid.botframework.com",
                                  "jwks_uri": f"{base}/v1/.well-known/keys",
                                  "id_token_signing_alg_values_supported": ["RS256"],
                                  "token_endpoint_auth_methods_supported": ["private_key_jwt"]})

    async def _keys(self, request: web.Request) -> web.Response:
        return web.json_response({"keys": [self.issuer.jwk()]})

    async def _token(self, request: web.Request) -> web.Response:
        form = await request.post()
        tenant = request.match_info["tenant"]
        if form.get("grant_type") != "client_credentials":
            return _aad(400, "unsupported_grant_type", 70003, "The app requested an unsupported grant type.")
        if form.get("client_id") != self.app_id:
            return _aad(400, "unauthorized_client", 700016, f"Application with identifier "
                        f"'{form.get('client_id')}' was not found in the directory '{tenant}'.")
        if form.get("client_secret") != self.app_password:
            return _aad(401, "invalid_client", 7000215, "Invalid client secret provided. Ensure the secret being "
                        "sent in the request is the client secret value, not the client secret ID.")
        scope = {BOT_TENANT: BOT_SCOPE, self.tenant_id: GRAPH_SCOPE}.get(tenant)
        if scope is None or form.get("scope") != scope:
            return _aad(400, "invalid_scope", 1002012, f"The provided value for scope {form.get('scope')} is "
                        f"not valid for tenant {tenant}.")
        token = f"eyJ0eXAi.{uuid.uuid4().hex}.{uuid.uuid4().hex}"
        self._tokens[token] = scope
        self.tokens_issued += 1
        return web.json_response({"token_type": "Bearer", "expires_in": 3599, "ext_expires_in": 3599,
                                  "access_token": token})

    def _check(self, request: web.Request, scope: str) -> web.Response | None:
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        if scheme != "Bearer" or self._tokens.get(token) != scope:
            if scope == GRAPH_SCOPE:
                return web.json_response({"error": {"code": "InvalidAuthenticationToken",
                                                    "message": "Access token has expired or is not yet valid."}},
                                         status=401)
            return web.json_response({"message": "Authorization has been denied for this request."}, status=401)
        return self.script.popleft() if self.script else None

    async def _create(self, request: web.Request) -> web.Response:
        if (refused := self._check(request, BOT_SCOPE)) is not None:
            return refused
        body = await request.json()
        self.requests.append(Recorded("POST", request.path, body))
        members = body.get("members") or []
        if body.get("isGroup") or len(members) != 1 or body.get("bot", {}).get("id") != f"28:{self.app_id}":
            return _connector(400, "BadArgument", "Incorrect conversation creation parameters")
        # The Connector reads JSON case-insensitively: botbuilder-python sends "tenantID", .NET "tenantId".
        tenant = next((v for k, v in body.items() if k.lower() == "tenantid"), None)
        if tenant != self.tenant_id and body.get("channelData", {}).get("tenant", {}).get("id") != self.tenant_id:
            return _connector(400, "BadArgument", "Tenant id is required for personal conversations")
        aad = members[0].get("id")
        if aad not in self.users.values():
            return _connector(403, "Forbidden", "The bot is not part of the conversation roster.")
        conversation = f"a:1{base64.urlsafe_b64encode(aad.encode()).decode().rstrip('=')}"
        self._conversations[conversation] = aad
        return web.json_response({"id": conversation}, status=201)

    async def _send(self, request: web.Request) -> web.Response:
        if (refused := self._check(request, BOT_SCOPE)) is not None:
            return refused
        body = await request.json()
        self.requests.append(Recorded("POST", request.path, body))
        conversation = request.match_info["conversation"]
        if conversation not in self.channels and self._conversations.get(conversation) not in self.users.values():
            return _connector(404, "ConversationNotFound", "Conversation not found.")
        card = _card(body)
        if card is None:
            return _connector(400, "BadSyntax", "Activity is not a message with an adaptive card attachment")
        activity = str(next(self._ids))
        self.cards[(conversation, activity)] = card
        return web.json_response({"id": activity}, status=201)

    async def _update(self, request: web.Request) -> web.Response:
        if (refused := self._check(request, BOT_SCOPE)) is not None:
            return refused
        body = await request.json()
        self.requests.append(Recorded("PUT", request.path, body))
        key = (request.match_info["conversation"], request.match_info["activity"])
        if key not in self.cards:
            return _connector(404, "NotFound", "Activity not found.")
        card = _card(body)
        if card is None or body.get("id") != key[1]:
            return _connector(400, "BadSyntax", "Activity is not a message with an adaptive card attachment")
        self.cards[key] = card
        return web.json_response({"id": key[1]})

    def message_activity(self, user_aad: str, text: str, *, service_url: str, mentions: dict[str, str] | None = None,
                         group: bool = False, channel_id: str = "msteams") -> dict[str, Any]:
        """A `message` activity a user sends the bot, as the Bot Connector POSTs it. `mentions` maps each name
        written as <at>name</at> in `text` to the AAD object id mentioned, or to "bot" for the bot itself."""
        conversation = (f"19:{uuid.uuid4().hex}@thread.v2" if group
                        else f"a:1{base64.urlsafe_b64encode(user_aad.encode()).decode().rstrip('=')}")
        activity_id = str(next(self._ids))
        self._received.add((conversation, activity_id))
        entities: list[dict[str, Any]] = [{"type": "clientInfo", "locale": "en-US", "country": "US",
                                           "platform": "Web", "timezone": "Europe/London"}]
        for name, aad in (mentions or {}).items():
            mentioned = ({"id": f"28:{self.app_id}", "name": name} if aad == "bot"
                         else {"id": f"29:1{aad}", "name": name, "aadObjectId": aad})
            entities.append({"type": "mention", "text": f"<at>{name}</at>", "mentioned": mentioned})
        return {
            "type": "message", "id": activity_id, "timestamp": "2024-05-01T12:00:00.000Z", "channelId": channel_id,
            "serviceUrl": service_url, "localTimestamp": "2024-05-01T13:00:00.000+01:00", "locale": "en-US",
            "from": {"id": f"29:1{user_aad}", "name": "Someone", "aadObjectId": user_aad},
            "conversation": {"conversationType": "groupChat" if group else "personal", "tenantId": self.tenant_id,
                             "id": conversation, **({"isGroup": True} if group else {})},
            "recipient": {"id": f"28:{self.app_id}", "name": "Vigil"}, "textFormat": "plain", "text": text,
            "attachments": [], "entities": entities,
            "channelData": {"tenant": {"id": self.tenant_id}},
        }

    async def _reply(self, request: web.Request) -> web.Response:
        if (refused := self._check(request, BOT_SCOPE)) is not None:
            return refused
        body = await request.json()
        self.requests.append(Recorded("POST", request.path, body))
        key = (request.match_info["conversation"], request.match_info["activity"])
        if key not in self._received and key not in self.cards:
            return _connector(404, "ConversationNotFound", "Conversation not found.")
        if body.get("type") != "message" or not (body.get("text") or body.get("attachments")):
            return _connector(400, "BadSyntax", "Activity is not a message with text or attachments")
        self.replies.append({"conversation": key[0], "reply_to": body.get("replyToId"), "text": body.get("text"),
                             "textFormat": body.get("textFormat")})
        return web.json_response({"id": str(next(self._ids))}, status=201)

    async def _user(self, request: web.Request) -> web.Response:
        if (refused := self._check(request, GRAPH_SCOPE)) is not None:
            return refused
        upn = request.match_info["user"]
        self.requests.append(Recorded("GET", request.path, dict(request.query)))
        if upn.lower() not in {u.lower(): a for u, a in self.users.items()}:
            return web.json_response({"error": {
                "code": "Request_ResourceNotFound", "message": f"Resource '{upn}' does not exist or one of its "
                "queried reference-property objects are not present.",
                "innerError": {"date": "2024-05-01T12:00:00", "request-id": str(uuid.uuid4())}}}, status=404)
        aad = {u.lower(): a for u, a in self.users.items()}[upn.lower()]
        return web.json_response({"@odata.context": "https://graph.microsoft.com/v1.0/$metadata#users(id)/$entity",
                                  "id": aad})


def _card(body: dict[str, Any]) -> dict[str, Any] | None:
    attachments = body.get("attachments") or []
    if body.get("type") != "message" or len(attachments) != 1 or attachments[0].get("contentType") != CARD_TYPE:
        return None
    content = attachments[0].get("content")
    return content if isinstance(content, dict) and content.get("type") == "AdaptiveCard" else None


def _connector(status: int, code: str, message: str) -> web.Response:
    return web.json_response({"error": {"code": code, "message": message}}, status=status)


def _aad(status: int, error: str, code: int, text: str) -> web.Response:
    return web.json_response({"error": error, "error_description": f"AADSTS{code}: {text}", "error_codes": [code],
                              "timestamp": "2024-05-01 12:00:00Z", "trace_id": str(uuid.uuid4())}, status=status)
