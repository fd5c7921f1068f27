"""The voice keypad callback: Twilio posts the pressed digit; 1 acknowledges, 2 escalates.

The call carried a signed action token (incident, member); the press goes through the same
action path as every click (bot/chat/clicks.apply) and is answered with TwiML that says what happened.
Twilio's signature has no timestamp, so a captured press could be sent again at any time: the click
path's replay cache takes each signed request once, for a day (longer than any call lasts).
"""

from __future__ import annotations

from datetime import timedelta

from aiohttp import web

from bot.adapters.base import ActionEvent, CallbackId
from bot.chat import clicks
from bot.keys import SESSIONS, SETTINGS
from bot.media.senders import read_action_token
from bot.media.twilio import parse_keypad, twiml_say, verify_twilio_signature
from core.clock import utcnow
from core.types import Platform

PAYLOADS = {"ack": "ack:{}", "escalate": "esc:{}"}
REPLAYABLE = timedelta(days=1)


async def keypad(request: web.Request) -> web.Response:
    settings = request.app[SETTINGS]
    signature = request.headers.get("X-Twilio-Signature", "")
    voice = settings.voice or {}
    auth_token = str(voice.get("auth_token", ""))
    form = dict(await request.post())
    url = settings.resolved_base_url() + request.path_qs
    if not auth_token or not verify_twilio_signature(auth_token, url, form, signature):
        return web.Response(status=401, text="signature verification failed")
    pressed = parse_keypad({**request.query, **form})
    if pressed is None:
        return _twiml(twiml_say("Sorry, that key does nothing. Goodbye."))
    action, token = pressed
    who = read_action_token(settings.secret_key or settings.admin_token, token)
    if who is None:
        return web.Response(status=401, text="invalid action token")
    incident_id, member_id = who
    # The signature covers the URL and every parameter (CallSid, Digits): one per press.
    event = ActionEvent(Platform.VOICE, f"member:{member_id}", PAYLOADS[action].format(incident_id),
                        callback=CallbackId(signature, REPLAYABLE))
    outcome = await clicks.apply(event, request.app[SESSIONS], settings.resolved_base_url(), utcnow(),
                                 member_id=member_id)
    return _twiml(twiml_say(outcome.text))


def _twiml(body: str) -> web.Response:
    return web.Response(text=body, content_type="application/xml")


def setup(app: web.Application) -> None:
    # Registered before /im/{platform}/callback, so "voice" never reaches the chat adapters.
    app.router.add_post("/im/voice/callback", keypad)
