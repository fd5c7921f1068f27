"""Where the egress policy (core/egress.py) is enforced on outgoing HTTP.

Every aiohttp ClientSession Vigil creates comes from `client_session`: its connector judges the
addresses a host resolved to at connect time, after DNS and for every connection (the first request,
a retry, a redirect an SDK follows), and connects only to allowed ones. A DNS answer that flips to
127.0.0.1 after a URL was saved (rebinding) therefore reaches nothing. The session also refuses to
follow redirects, and never reads proxy settings from the environment.

SDKs that bring their own HTTP client (lark-oapi's httpx, botframework's msrest) cannot use this
connector: `preflight` resolves their base URL and judges it just before each call instead.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Sequence
from types import SimpleNamespace
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from aiohttp.abc import ResolveResult

from core.egress import EgressPolicy, literal_decision, url_problem
from core.errors import InvalidInput


class EgressRefused(aiohttp.ClientConnectionError):
    """The egress policy refused every address of a host; `reason` says why (no remote text in it)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason

    def __str__(self) -> str:
        return f"refused: {self.reason}"


class GuardedConnector(aiohttp.TCPConnector):
    """A TCPConnector that connects only to addresses the egress policy allows."""

    def __init__(self, policy: EgressPolicy, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.policy = policy

    # `_resolve_host` is the one place every connection's addresses pass through, IP literals included
    # (aiohttp skips the resolver for those), with the URL's host name still known (for host entries of
    # the allow-list). tests/api/test_egress.py fails if an aiohttp upgrade moves it.
    async def _resolve_host(self, host: str, port: int, traces: Sequence[Any] | None = None) -> list[ResolveResult]:
        resolved = await super()._resolve_host(host, port, traces=traces)
        allowed, reasons = [], []
        for result in resolved:
            decision = self.policy.decide(result["host"], host)
            (allowed.append(result) if decision.allowed else reasons.append(decision.reason))
        if not allowed:
            raise EgressRefused(reasons[0] if reasons else f"{host} has no address")
        return allowed


async def _refuse_redirect(_session: aiohttp.ClientSession, _ctx: SimpleNamespace,
                           params: aiohttp.TraceRequestRedirectParams) -> None:
    # Vigil's own calls pass allow_redirects=False; this stops an SDK call on our session from following one.
    params.response.close()
    raise EgressRefused(f"the answer was a redirect (HTTP {params.response.status}); redirects are not followed")


def client_session(policy: EgressPolicy, **kwargs: Any) -> aiohttp.ClientSession:
    """A ClientSession whose connections obey `policy` and which never follows a redirect."""
    trace = aiohttp.TraceConfig()
    trace.on_request_redirect.append(_refuse_redirect)
    return aiohttp.ClientSession(connector=GuardedConnector(policy), trace_configs=[trace], trust_env=False,
                                 **kwargs)


def policy_of(http: aiohttp.ClientSession | None) -> EgressPolicy:
    """The policy a session enforces; a session not made by `client_session` gets the closed default."""
    connector = http.connector if http is not None else None
    return connector.policy if isinstance(connector, GuardedConnector) else EgressPolicy()


async def preflight(url: str, policy: EgressPolicy) -> None:
    """Resolve `url`'s host now and raise EgressRefused unless some address is allowed (for SDK clients).

    A name that does not resolve raises OSError: the SDK's own call would fail on it anyway.
    """
    problem = url_problem(url)
    if problem:
        raise EgressRefused(f"the URL {problem}")
    parts = urlsplit(url)
    host = parts.hostname or ""
    infos = await asyncio.get_running_loop().getaddrinfo(host, parts.port or 443, type=socket.SOCK_STREAM)
    decisions = [policy.decide(str(info[4][0]), host) for info in infos]
    if not any(d.allowed for d in decisions):
        raise EgressRefused(decisions[0].reason if decisions else f"{host} has no address")


def require_sendable(field: str, url: str, policy: EgressPolicy) -> None:
    """Save-time check of an outgoing URL: http/https with a host, and no refused IP literal.

    Host names are judged again at every send, on the addresses they resolve to then.
    """
    problem = url_problem(url)
    if problem:
        raise InvalidInput(f"{field}: {problem}")
    decision = literal_decision(policy, url)
    if not decision.allowed:
        raise InvalidInput(f"{field}: {decision.reason}")
