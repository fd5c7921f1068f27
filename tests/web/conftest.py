"""Fixtures for the web pages: a Vigil with VIGIL_SECRET_KEY (web sign-in on), members with passwords,
and a browser-like client (cookies, forms with their CSRF token, no automatic redirects)."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.kit import LOCAL_FAKES

SECRET_KEY = "web-test-secret-key-0123456789abcdefghij"
PASSWORD = "correct horse battery staple"


@pytest.fixture
def settings(db_url: str):  # type: ignore[no-untyped-def]
    """The root fixture's settings, with a secret key so web sign-in is on."""
    from core.settings import Settings

    return Settings(database_url=db_url, admin_token="test-admin-token-0123456789abcdef", base_url="http://vigil.test",
                    sweep_interval_seconds=0.2, egress_allow=list(LOCAL_FAKES), secret_key=SECRET_KEY)


CSRF = re.compile(r'name="csrf" value="([^"]+)"')


class Browser:
    """One browser on the web pages: its cookie jar is the session; forms are posted with the CSRF token of
    the page they are on, as a real form would."""

    def __init__(self, client: Any) -> None:
        self.client = client

    async def get(self, path: str) -> tuple[int, str, str]:
        """(status, Location or '', body)."""
        resp = await self.client.get(path, allow_redirects=False)
        return resp.status, resp.headers.get("Location", ""), await resp.text()

    async def open_link(self, link: str, base_url: str = "http://vigil.test") -> str:
        """Open a link a member received (with its sign-in token): it must sign in and redirect to the clean
        incident URL, whose page is returned."""
        path = urlsplit(link).path
        status, location, _ = await self.get(link.removeprefix(base_url))
        assert (status, location) == (303, path), (status, location)
        status, _, body = await self.get(path)
        assert status == 200, status
        return body

    async def csrf(self, path: str) -> str:
        status, _, body = await self.get(path)
        assert status == 200, (path, status)
        return CSRF.search(body).group(1)

    async def post(self, path: str, data: dict[str, str], *, form_at: str | None = None,
                   csrf: bool = True) -> tuple[int, str, str]:
        """Post `data` as the form on page `form_at` (default: `path`) would; csrf=False leaves the token out."""
        if csrf:
            data = {"csrf": await self.csrf(form_at or path), **data}
        resp = await self.client.post(path, data=data, allow_redirects=False)
        return resp.status, resp.headers.get("Location", ""), await resp.text()

    async def sign_in(self, email: str, password: str = PASSWORD, next_path: str = "/") -> tuple[int, str, str]:
        return await self.post("/login", {"email": email, "password": password, "next": next_path})

    def forget(self) -> None:
        """A fresh browser: no cookies."""
        self.client.session.cookie_jar.clear()


@pytest.fixture
def browser(app) -> Browser:  # type: ignore[no-untyped-def]
    return Browser(app.client)


async def new_member(app, name: str, role: str = "responder", password: str | None = PASSWORD) -> int:  # type: ignore[no-untyped-def]
    m = await app.post("/members", {"name": name, "email": f"{name}@example.com", "role": role})
    if password is not None:
        await app.call("PUT", f"/members/{m['member_id']}/password", {"password": password})
    return m["member_id"]


async def new_incident(app, title: str = "db down", channel: str = "prod") -> int:  # type: ignore[no-untyped-def]
    _, key = await app.channel_with_integration(name=channel)
    await app.push(key, {"event_status": "Critical", "title_rule": title, "alert_key": title,
                         "labels": {"host": "db-1", "service": "orders"}})
    items = (await app.get("/incidents"))["items"]
    return next(i["incident_id"] for i in items if i["title"] == title)
