"""A local fake of the Slack Web API, response_url endpoint and callback signing, for adapter tests.

It checks the bot token as Slack does (Authorization: Bearer, or a `token` argument) and answers in
Slack's shapes: HTTP 200 with `{"ok": false, "error": ...}` for API errors, HTTP 429 + Retry-After with
`{"ok": false, "error": "ratelimited"}` for rate limits. Docs: https://api.slack.com/web#responses.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import itertools
import json
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from aiohttp import web

TEAM = "T0VIGIL01"
BOT_USER = "U0VIGILBOT"


@dataclass
class SlackRequest:
    """One Web API call the fake accepted (after auth): method and merged arguments."""

    method: str
    args: dict[str, Any]


@dataclass
class FakeSlack:
    bot_token: str
    users: dict[str, str]  # user id -> email of people in the workspace
    disabled: set[str] = field(default_factory=set)  # deactivated accounts
    channels: set[str] = field(default_factory=set)  # channels the bot is a member of
    other_channels: set[str] = field(default_factory=set)  # channels that exist without the bot
    unreachable_images: set[str] = field(default_factory=set)  # image URLs Slack cannot download
    client_id: str = ""
    client_secret: str = ""
    refresh_token: str = ""
    requests: list[SlackRequest] = field(default_factory=list)
    responses: list[dict[str, Any]] = field(default_factory=list)  # bodies POSTed to response_urls
    messages: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)  # (channel, ts) -> latest
    script: deque[web.Response] = field(default_factory=deque)
    tokens_issued: int = 0
    _valid: set[str] = field(default_factory=set)
    _expired: set[str] = field(default_factory=set)
    _ts: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def __post_init__(self) -> None:
        self._valid.add(self.bot_token)

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_route("*", "/api/{method}", self._api)
        app.router.add_post("/response/{hook}", self._response_url)
        return app

    # -- scripting -------------------------------------------------------------------------------

    def fail_next(self, error: str, status: int = 200, headers: dict[str, str] | None = None) -> None:
        """Answer the next authorised API call with this Slack error."""
        self.script.append(web.json_response({"ok": False, "error": error}, status=status, headers=headers))

    def fail_next_html(self, status: int) -> None:
        """Answer the next authorised API call with a load balancer's HTML error page."""
        self.script.append(web.Response(status=status, text="<html>upstream error</html>", content_type="text/html"))

    def expire_tokens(self) -> None:
        """Every access token issued so far answers `token_expired` (token rotation: 12 hours)."""
        self._expired |= self._valid
        self._valid.clear()

    def calls(self, method: str) -> list[SlackRequest]:
        return [r for r in self.requests if r.method == method]

    # -- Web API ---------------------------------------------------------------------------------

    async def _api(self, request: web.Request) -> web.StreamResponse:
        method = request.match_info["method"]
        args: dict[str, Any] = dict(request.query)
        if request.content_type == "application/json":
            args.update(await request.json())
        elif request.can_read_body:
            args.update(await request.post())
        if method == "oauth.v2.access":
            return self._oauth(request, args)
        token = request.headers.get("Authorization", "").removeprefix("Bearer ") or str(args.pop("token", ""))
        if not token:
            return _fail("not_authed")
        if token in self._expired:
            return _fail("token_expired")
        if token not in self._valid:
            return _fail("invalid_auth")
        if self.script:
            return self.script.popleft()
        self.requests.append(SlackRequest(method, args))
        handler = {"auth.test": self._auth_test, "conversations.open": self._open,
                   "chat.postMessage": self._post, "chat.update": self._update,
                   "chat.postEphemeral": self._ephemeral, "views.open": self._views_open,
                   "users.lookupByEmail": self._lookup}.get(method)
        if handler is None:
            return _fail("unknown_method", status=404)
        return handler(args)

    def _oauth(self, request: web.Request, args: dict[str, Any]) -> web.StreamResponse:
        auth = request.headers.get("Authorization", "")
        if auth.startswith("Basic "):
            cid, _, secret = base64.b64decode(auth[6:]).decode().partition(":")
        else:
            cid, secret = str(args.get("client_id", "")), str(args.get("client_secret", ""))
        if (cid, secret) != (self.client_id, self.client_secret) or not self.client_id:
            return _fail("invalid_client_id" if cid != self.client_id else "bad_client_secret")
        if args.get("grant_type") != "refresh_token" or args.get("refresh_token") != self.refresh_token:
            return _fail("invalid_refresh_token")
        self.tokens_issued += 1
        token = f"xoxe.xoxb-1-rotated{self.tokens_issued}"
        self.refresh_token = f"xoxe-1-refresh{self.tokens_issued}"
        self._valid.add(token)
        return web.json_response({"ok": True, "app_id": "A0VIGIL", "access_token": token, "expires_in": 43200,
                                  "refresh_token": self.refresh_token, "token_type": "bot", "scope": "chat:write",
                                  "bot_user_id": BOT_USER, "team": {"id": TEAM, "name": "Vigil"}})

    def _auth_test(self, args: dict[str, Any]) -> web.StreamResponse:
        return _ok({"url": "https://vigil.slack.com/", "team": "Vigil", "user": "vigil", "team_id": TEAM,
                    "user_id": BOT_USER, "bot_id": "B0VIGIL", "is_enterprise_install": False})

    def _open(self, args: dict[str, Any]) -> web.StreamResponse:
        users = str(args.get("users", ""))
        if not users:
            return _fail("users_list_not_supplied")
        if users == BOT_USER:
            return _fail("cannot_dm_bot")
        if users not in self.users:
            return _fail("user_not_found")
        if users in self.disabled:
            return _fail("user_disabled")
        return _ok({"no_op": True, "already_open": True, "channel": {"id": "D" + users[1:]}})

    def _channel_error(self, channel: str) -> web.StreamResponse | None:
        if channel.startswith("D") and "U" + channel[1:] in self.users:
            return None
        if channel in self.channels:
            return None
        return _fail("not_in_channel" if channel in self.other_channels else "channel_not_found")

    def _post(self, args: dict[str, Any]) -> web.StreamResponse:
        channel = str(args.get("channel", ""))
        if (problem := self._channel_error(channel)) is not None:
            return problem
        if not (args.get("text") or args.get("blocks") or args.get("attachments")):
            return _fail("no_text")
        if (problem := self._image_error(args)) is not None:
            return problem
        ts = f"{int(time.time())}.{next(self._ts):06d}"
        message = {k: args[k] for k in ("text", "attachments", "blocks") if k in args}
        self.messages[(channel, ts)] = message
        return _ok({"channel": channel, "ts": ts, "message": {"type": "message", "user": BOT_USER, "ts": ts,
                                                              **message}})

    def _update(self, args: dict[str, Any]) -> web.StreamResponse:
        channel, ts = str(args.get("channel", "")), str(args.get("ts", ""))
        if (problem := self._channel_error(channel)) is not None:
            return problem
        if (channel, ts) not in self.messages:
            return _fail("message_not_found")
        if (problem := self._image_error(args)) is not None:
            return problem
        message = {k: args[k] for k in ("text", "attachments", "blocks") if k in args}
        self.messages[(channel, ts)] = message
        return _ok({"channel": channel, "ts": ts, "text": args.get("text", ""), "message": message})

    def _image_error(self, args: dict[str, Any]) -> web.StreamResponse | None:
        """Slack downloads each image block's image_url first and refuses the message if one fails."""
        attachments = args.get("attachments") or []
        attachments = json.loads(attachments) if isinstance(attachments, str) else attachments
        blocks = args.get("blocks") or []
        places = [("/blocks", json.loads(blocks) if isinstance(blocks, str) else blocks)]
        places += [(f"/attachments/{i}/blocks", a.get("blocks") or []) for i, a in enumerate(attachments)]
        for where, found in places:
            for i, block in enumerate(found):
                if block.get("type") == "image" and block.get("image_url") in self.unreachable_images:
                    error = f"downloading image failed [json-pointer:{where}/{i}/image_url]"
                    return web.json_response({"ok": False, "error": "invalid_blocks", "errors": [error],
                                              "response_metadata": {"messages": [f"[ERROR] {error}"]}})
        return None

    def _ephemeral(self, args: dict[str, Any]) -> web.StreamResponse:
        if (problem := self._channel_error(str(args.get("channel", "")))) is not None:
            return problem
        if args.get("user") not in self.users:
            return _fail("user_not_in_channel")
        return _ok({"message_ts": f"{int(time.time())}.{next(self._ts):06d}"})

    def _views_open(self, args: dict[str, Any]) -> web.StreamResponse:
        view = args.get("view")
        if isinstance(view, str):
            view = json.loads(view)
        if not args.get("trigger_id"):
            return _fail("invalid_trigger_id")
        if not isinstance(view, dict) or view.get("type") != "modal":
            return _fail("invalid_arguments")
        return _ok({"view": {"id": f"V{next(self._ts):08d}", "team_id": TEAM, **view}})

    def _lookup(self, args: dict[str, Any]) -> web.StreamResponse:
        email = str(args.get("email", "")).lower()
        for uid, address in self.users.items():
            if address.lower() == email and email:
                return _ok({"user": {"id": uid, "team_id": TEAM, "name": address.split("@")[0],
                                     "deleted": uid in self.disabled, "is_bot": False,
                                     "profile": {"email": address}}})
        return _fail("users_not_found")

    async def _response_url(self, request: web.Request) -> web.StreamResponse:
        self.responses.append(await request.json())
        return web.Response(text="ok")


def _ok(data: dict[str, Any]) -> web.Response:
    return web.json_response({"ok": True, **data})


def _fail(error: str, status: int = 200) -> web.Response:
    return web.json_response({"ok": False, "error": error}, status=status)


# -- callbacks as Slack sends them -------------------------------------------------------------------


def signed_headers(secret: str, body: bytes, timestamp: int, *, content_type: str | None = None) -> dict[str, str]:
    """Slack's v0 signature: hex HMAC-SHA256 of "v0:{timestamp}:{body}" with the app's signing secret."""
    base = b"v0:" + str(timestamp).encode() + b":" + body
    signature = "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()
    return {"X-Slack-Request-Timestamp": str(timestamp), "X-Slack-Signature": signature,
            "Content-Type": content_type or "application/x-www-form-urlencoded"}


def block_actions(user: str, action: dict[str, Any], *, response_url: str = "", channel: str = "D0ANN",
                  ts: str = "1700000000.000100", trigger_id: str = "1234567890.987654321.abcdef") -> bytes:
    """An interactivity POST for a click on a message button or select (form field `payload`, JSON)."""
    payload = {
        "type": "block_actions", "api_app_id": "A0VIGIL", "token": "legacy-verification-token",
        "team": {"id": TEAM, "domain": "vigil"}, "user": {"id": user, "username": user.lower(), "team_id": TEAM},
        "container": {"type": "message", "message_ts": ts, "channel_id": channel, "is_ephemeral": False},
        "trigger_id": trigger_id, "channel": {"id": channel, "name": "directmessage"},
        "message": {"type": "message", "user": BOT_USER, "ts": ts, "text": "card"},
        "response_url": response_url,
        "actions": [{"block_id": "vigil.actions", "action_ts": "1700000001.000200", **action}],
    }
    return urlencode({"payload": json.dumps(payload)}).encode()


def button(action_id: str, value: str) -> dict[str, Any]:
    return {"type": "button", "action_id": action_id, "value": value, "text": {"type": "plain_text", "text": "x"}}


def selected(action_id: str, value: str) -> dict[str, Any]:
    return {"type": "static_select", "action_id": action_id,
            "selected_option": {"text": {"type": "plain_text", "text": "x"}, "value": value}}


def view_submission(user: str, view: dict[str, Any], values: dict[str, Any]) -> bytes:
    """The interactivity POST when a user submits a modal opened with `view` (as views.open got it)."""
    payload = {"type": "view_submission", "team": {"id": TEAM, "domain": "vigil"},
               "user": {"id": user, "username": user.lower(), "team_id": TEAM}, "api_app_id": "A0VIGIL",
               "trigger_id": "1234567890.987654321.fedcba",
               "view": {"id": "V0001", "team_id": TEAM, **view, "state": {"values": values}},
               "response_urls": []}
    return urlencode({"payload": json.dumps(payload)}).encode()


def slash_command(user: str, text: str, *, command: str = "/vigil", response_url: str = "",
                  channel: str = "C0OPS") -> bytes:
    """A slash command POST: plain form fields, no JSON."""
    return urlencode({"token": "legacy-verification-token", "team_id": TEAM, "team_domain": "vigil",
                      "channel_id": channel, "channel_name": "ops", "user_id": user, "user_name": user.lower(),
                      "command": command, "text": text, "api_app_id": "A0VIGIL", "response_url": response_url,
                      "trigger_id": "1234567890.987654321.aaaaaa"}).encode()
