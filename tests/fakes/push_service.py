"""A local Web Push service (RFC 8030) that checks what a real one checks, and reads what it was sent.

Browsers' subscriptions are made here as a browser makes them: a P-256 key pair and a 16-byte auth secret
per subscription (RFC 8291), and an endpoint on this service. A push must carry a VAPID JWT (RFC 8292:
`Authorization: vapid t=<jwt>, k=<public key>`) signed ES256 with the key it names, for this service's
origin (`aud`), not expired and at most 24 h ahead, with a `sub`; when the service is told the server's
public key (the applicationServerKey a browser subscribed with), `k` must be that key. The body must be
aes128gcm (RFC 8188) and is decrypted with http_ece using the subscription's private key and auth secret.
Answers: 201 with a Location, 410 for an expired subscription, 404 for an unknown one, 400/401/403 for a bad
request, or what `fail_next` says.
"""

from __future__ import annotations

import base64
import json
import os
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import http_ece
from aiohttp import web
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass
class Browser:
    """One subscription's browser side: the keys only the browser holds."""

    id: str
    private_key: ec.EllipticCurvePrivateKey
    auth: bytes

    def keys(self) -> dict[str, str]:
        public = self.private_key.public_key().public_bytes(serialization.Encoding.X962,
                                                            serialization.PublicFormat.UncompressedPoint)
        return {"p256dh": b64url(public), "auth": b64url(self.auth)}


@dataclass
class Received:
    subscription_id: str
    payload: dict[str, Any]
    headers: dict[str, str]
    claims: dict[str, Any]


@dataclass
class FakePushService:
    """Set `url` (its origin as the server sees it) once it listens; `server_key` to pin the VAPID key."""

    url: str = ""
    server_key: str | None = None
    browsers: dict[str, Browser] = field(default_factory=dict)
    expired: set[str] = field(default_factory=set)
    received: list[Received] = field(default_factory=list)
    refused: list[tuple[int, str]] = field(default_factory=list)
    _fail: list[tuple[int, dict[str, str]]] = field(default_factory=list)

    def subscribe(self) -> dict[str, Any]:
        """A new subscription as a browser's `JSON.stringify(PushSubscription)` gives it."""
        browser = Browser(uuid.uuid4().hex, ec.generate_private_key(ec.SECP256R1()), os.urandom(16))
        self.browsers[browser.id] = browser
        return {"endpoint": f"{self.url}/push/{browser.id}", "expirationTime": None, "keys": browser.keys()}

    def expire(self, subscription: dict[str, Any]) -> None:
        """The browser unsubscribed: pushes to it get 410 Gone from now on."""
        self.expired.add(subscription["endpoint"].rsplit("/", 1)[1])

    def fail_next(self, status: int, headers: dict[str, str] | None = None) -> None:
        self._fail.append((status, headers or {}))

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/push/{id}", self._push)
        return app

    def _refuse(self, status: int, why: str) -> web.Response:
        self.refused.append((status, why))
        return web.Response(status=status, text=why)

    async def _push(self, request: web.Request) -> web.Response:
        sub_id = request.match_info["id"]
        body = await request.read()
        try:
            claims = self._check_vapid(request.headers.get("Authorization", ""))
        except ValueError as exc:
            return self._refuse(401, f"VAPID: {exc}")
        if self.server_key is not None and request.headers["Authorization"].split("k=")[1].strip() != self.server_key:
            return self._refuse(403, "VAPID key is not the one this subscription was made with")
        if self._fail:
            status, headers = self._fail.pop(0)
            return web.Response(status=status, headers=headers, text="failing as told")
        if sub_id in self.expired:
            return self._refuse(410, "subscription expired")
        browser = self.browsers.get(sub_id)
        if browser is None:
            return self._refuse(404, "no such subscription")
        if request.headers.get("Content-Encoding") != "aes128gcm" or "TTL" not in request.headers:
            return self._refuse(400, "Content-Encoding aes128gcm and TTL are required")
        try:
            plain = http_ece.decrypt(body, private_key=browser.private_key, auth_secret=browser.auth,
                                     version="aes128gcm")
        except Exception as exc:
            return self._refuse(400, f"cannot decrypt: {type(exc).__name__}")
        self.received.append(Received(sub_id, json.loads(plain), dict(request.headers), claims))
        return web.Response(status=201, headers={"Location": f"{self.url}/message/{uuid.uuid4().hex}"})

    def _check_vapid(self, header: str) -> dict[str, Any]:
        scheme, _, params = header.partition(" ")
        if scheme.lower() != "vapid":
            raise ValueError("the Authorization scheme must be vapid")
        parts = dict(p.strip().split("=", 1) for p in params.split(",") if "=" in p)
        token, key = parts.get("t", ""), parts.get("k", "")
        public = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), unb64url(key))
        head, claims_b64, sig = token.split(".")
        if json.loads(unb64url(head)).get("alg") != "ES256":
            raise ValueError("alg must be ES256")
        raw = unb64url(sig)
        der = encode_dss_signature(int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big"))
        try:
            public.verify(der, f"{head}.{claims_b64}".encode(), ec.ECDSA(hashes.SHA256()))
        except InvalidSignature:
            raise ValueError("bad signature") from None
        claims = json.loads(unb64url(claims_b64))
        if claims.get("aud") != self.url:
            raise ValueError(f"aud {claims.get('aud')!r} is not {self.url!r}")
        if not time.time() < claims.get("exp", 0) <= time.time() + 24 * 3600:
            raise ValueError("exp must be in the future, at most 24 h ahead")
        if not str(claims.get("sub", "")).startswith(("mailto:", "https://")):
            raise ValueError("sub must be a mailto: or https: URI")
        return claims
