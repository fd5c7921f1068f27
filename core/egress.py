"""The egress policy: which addresses Vigil may send to (webhooks, custom actions, bots, SMS, IM APIs).

Pure decisions, no I/O. By default only globally routable unicast addresses are allowed: loopback,
link-local (cloud metadata lives at 169.254.169.254), private, shared (CGNAT), unique-local,
multicast, reserved and unspecified addresses are refused, so a URL an admin or an attacker typed
cannot reach inside the network. The operator opens internal targets explicitly with an allow-list
(`VIGIL_EGRESS_ALLOW`): CIDRs and single addresses match the address connected to, host names (or
`*.domain`) match the name the URL gives. bot/egress.py enforces it on the address each connection
really uses.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

ALLOW_SETTING = "VIGIL_EGRESS_ALLOW"
SCHEMES = ("http", "https")

_SHARED = ipaddress.ip_network("100.64.0.0/10")  # RFC 6598 carrier-grade NAT: inside someone's network
_NAT64 = ipaddress.ip_network("64:ff9b::/96")  # RFC 6052: the IPv4 address sits in the last 32 bits
_HOST = re.compile(r"^(\*\.)?([a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?\.)*[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?$")


@dataclass(frozen=True)
class Decision:
    """Whether a send may go to an address, and why not (a short reason an operator can act on)."""

    allowed: bool
    reason: str = ""


@dataclass(frozen=True)
class EgressPolicy:
    """The allow-list: networks matched against addresses, host names matched against the URL's host."""

    networks: tuple[Network, ...] = ()
    hosts: tuple[str, ...] = ()  # lower case, no trailing dot; "*.example.com" matches its subdomains

    @classmethod
    def parse(cls, entries: Iterable[str]) -> EgressPolicy:
        """Build from `VIGIL_EGRESS_ALLOW` entries; a ValueError names the first entry that is neither."""
        networks: list[Network] = []
        hosts: list[str] = []
        for raw in entries:
            entry = raw.strip()
            if not entry:
                continue
            try:
                networks.append(ipaddress.ip_network(entry.strip("[]"), strict=False))
                continue
            except ValueError:
                pass
            name = entry.lower().rstrip(".")
            if not _HOST.match(name):
                raise ValueError(f"{ALLOW_SETTING}: {entry!r} is neither a CIDR, an IP address nor a host name")
            hosts.append(name)
        return cls(tuple(networks), tuple(hosts))

    def allows_host(self, host: str) -> bool:
        """Whether the allow-list names this host (exactly, or through a `*.domain` entry)."""
        name = host.lower().rstrip(".")
        return any(name == h or (h.startswith("*.") and name.endswith(h[1:])) for h in self.hosts)

    def decide(self, address: str, host: str = "") -> Decision:
        """May Vigil connect to `address` (an IP, as resolved) for a URL naming `host`?"""
        try:
            ip = ipaddress.ip_address(address.split("%", 1)[0])  # drop an IPv6 zone ("fe80::1%eth0")
        except ValueError:
            return Decision(False, f"{address!r} is not an IP address")
        inner = embedded_ipv4(ip)
        if (host and self.allows_host(host)) or any(a in n for n in self.networks for a in {ip, inner}
                                                    if a.version == n.version):
            return Decision(True)
        kind = internal_kind(inner)
        if kind is None:
            return Decision(True)
        shown = f"{ip} ({inner})" if inner != ip else str(ip)
        return Decision(False, f"{shown} is {kind} address; add it to {ALLOW_SETTING} to allow it")


def embedded_ipv4(ip: Address) -> Address:
    """The IPv4 address an IPv6 one carries (IPv4-mapped, 6to4, NAT64), else the address itself.

    `::ffff:127.0.0.1` reaches 127.0.0.1: judged by its IPv4 form, a mapped address cannot slip past.
    """
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return ip.ipv4_mapped
        if ip.sixtofour is not None:
            return ip.sixtofour
        if ip in _NAT64:
            return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return ip


def internal_kind(ip: Address) -> str | None:
    """What makes an address internal ("a loopback", "a private"...), or None for a public unicast one."""
    if ip.is_unspecified:
        return "an unspecified"
    if ip.is_loopback:
        return "a loopback"
    if ip.is_link_local:
        return "a link-local"
    if ip.is_multicast:
        return "a multicast"
    if ip in _SHARED:
        return "a shared (CGNAT)"
    if isinstance(ip, ipaddress.IPv6Address) and ip.is_site_local:
        return "a site-local"
    if ip.is_reserved:  # before is_private, which also counts 240/4 and the broadcast address
        return "a reserved"
    if ip.is_private or not ip.is_global:
        return "a private"
    return None


def url_problem(url: str) -> str | None:
    """What is wrong with an outgoing URL before any address is looked at: scheme, host, credentials."""
    try:
        parts = urlsplit(url.strip())
        host = parts.hostname
        parts.port  # noqa: B018  (raises ValueError for a port out of range)
    except ValueError:
        return "is not a valid URL"
    if parts.scheme.lower() not in SCHEMES:
        return f"must be an http or https URL, not {parts.scheme or 'scheme-less'!r}"
    if not host:
        return "has no host"
    return None


def literal_decision(policy: EgressPolicy, url: str) -> Decision:
    """The decision for a URL whose host is an IP literal; other hosts are judged when resolved."""
    host = (urlsplit(url.strip()).hostname or "").strip("[]")
    try:
        ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return Decision(True)
    return policy.decide(host)
