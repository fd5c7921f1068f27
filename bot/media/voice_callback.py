"""The voice keypad callback: Twilio posts the pressed digit; 1 acknowledges, 2 escalates.

The call carried a signed action token (incident, member); the press goes through the same
action path as every click (bot/clicks.apply) and is answered with TwiML that says what happened.
"""

from __future__ import annotations

from aiohttp import web

from bot.chat import clicks
from bot.adapters.base import ActionEvent
from bot.keys import SESSIONS, SETTINGS
from bot.media.senders import read_action_token
from bot.media.twilio import parse_keypad, twiml_say, verify_twilio_signature
from core.clock import utcnow
from core.types import Platform

PAYLOADS = {"ack": "ack:{}", "escalate": "esc:{}"}


async def keypad(request: web.Request) -> web.Response:
    settings = request.app[SETTINGS]
    voice = settings.voice or {}
    auth_token = str(voice.get("auth_token", ""))
    form = dict(await request.post())
    url = settings.resolved_base_url() + request.path_qs
    if not auth_token or not verify_twilio_signature(auth_token, url, form,
                                                     request.headers.get("X-Twilio-Signature", "")):
        return web.Response(status=401, text="signature verification failed")
    pressed = parse_keypad({**request.query, **form})
    if pressed is None:
        return _twiml(twiml_say("Sorry, that key does nothing. Goodbye."))
    action, token = pressed
    who = read_action_token(settings.secret_key or settings.admin_token, token)
    if who is None:
        return web.Response(status=401, text="invalid action token")
    incident_id, member_id = who
    event = ActionEvent(Platform.VOICE, f"member:{member_id}", PAYLOADS[action].format(incident_id))
    outcome = await clicks.apply(event, request.app[SESSIONS], settings.resolved_base_url(), utcnow(),
                                 member_id=member_id)
    return _twiml(twiml_say(outcome.text))


def _twiml(body: str) -> web.Response:
    return web.Response(text=body, content_type="application/xml")


def setup(app: web.Application) -> None:
    # Registered before /im/{platform}/callback, so "voice" never reaches the chat adapters.
    app.router.add_post("/im/voice/callback", keypad)
