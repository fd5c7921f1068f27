"""The egress policy as a table: which addresses are refused by default, what the allow-list opens."""

import pytest

from core.egress import EgressPolicy, literal_decision, url_problem

CLOSED = EgressPolicy()


@pytest.mark.parametrize(("address", "kind"), [
    ("127.0.0.1", "loopback"),
    ("127.8.9.10", "loopback"),
    ("::1", "loopback"),
    ("0.0.0.0", "unspecified"),
    ("::", "unspecified"),
    ("169.254.169.254", "link-local"),  # cloud metadata
    ("fe80::1", "link-local"),
    ("fe80::1%eth0", "link-local"),
    ("10.0.0.1", "private"),
    ("10.255.255.255", "private"),
    ("172.16.0.1", "private"),
    ("172.31.255.254", "private"),
    ("192.168.1.1", "private"),
    ("100.64.0.1", "shared (CGNAT)"),
    ("100.127.255.254", "shared (CGNAT)"),
    ("fc00::1", "private"),
    ("fd12:3456::1", "private"),
    ("224.0.0.1", "multicast"),
    ("239.255.255.250", "multicast"),
    ("ff02::1", "multicast"),
    ("fec0::1", "site-local"),
    ("240.0.0.1", "reserved"),
    ("255.255.255.255", "reserved"),
    ("192.0.2.10", "private"),  # TEST-NET-1, documentation only
    ("::ffff:127.0.0.1", "loopback"),  # IPv4-mapped IPv6 is judged as the IPv4 address it reaches
    ("::ffff:169.254.169.254", "link-local"),
    ("::ffff:10.1.2.3", "private"),
    ("2002:7f00:1::1", "loopback"),  # 6to4 around 127.0.0.1
    ("64:ff9b::a9fe:a9fe", "link-local"),  # NAT64 around 169.254.169.254
])
def test_internal_addresses_are_refused_by_default(address, kind):
    decision = CLOSED.decide(address)
    assert not decision.allowed
    assert f"is a {kind} address" in decision.reason or f"is an {kind} address" in decision.reason
    assert "VIGIL_EGRESS_ALLOW" in decision.reason


@pytest.mark.parametrize("address", ["93.184.215.14", "8.8.8.8", "172.32.0.1", "100.128.0.1", "2606:4700::1111",
                                     "::ffff:8.8.8.8", "2002:808:808::1"])
def test_public_addresses_are_allowed(address):
    assert CLOSED.decide(address).allowed


@pytest.mark.parametrize(("entries", "address", "host", "allowed"), [
    (["127.0.0.1"], "127.0.0.1", "", True),
    (["127.0.0.1"], "127.0.0.2", "", False),
    (["127.0.0.0/8"], "127.0.0.2", "", True),
    (["127.0.0.1/32"], "::ffff:127.0.0.1", "", True),  # the mapped form of an allowed IPv4 address
    (["::1"], "::1", "", True),
    (["::1"], "127.0.0.1", "", False),
    (["[::1]"], "::1", "", True),
    (["10.0.0.0/8"], "10.20.30.40", "", True),
    (["10.0.0.0/8"], "169.254.169.254", "", False),  # opening one range opens nothing else
    (["10.0.0.5/8"], "10.1.1.1", "", True),  # host bits are forgiven: the operator meant the network
    (["fd00::/8"], "fd00::5", "", True),
    (["fe80::/10"], "fe80::1%eth0", "", True),
    (["hooks.internal"], "10.1.2.3", "hooks.internal", True),
    (["hooks.internal"], "10.1.2.3", "HOOKS.INTERNAL.", True),
    (["hooks.internal"], "10.1.2.3", "other.internal", False),
    (["hooks.internal"], "10.1.2.3", "evil-hooks.internal", False),
    (["*.corp.example"], "10.1.2.3", "sms.corp.example", True),
    (["*.corp.example"], "10.1.2.3", "a.b.corp.example", True),
    (["*.corp.example"], "10.1.2.3", "corp.example", False),
    (["*.corp.example"], "10.1.2.3", "corp.example.evil.com", False),
    (["0.0.0.0/0", "::/0"], "169.254.169.254", "", True),  # wide open, if the operator says so
    ([" 127.0.0.1 ", "", "10.0.0.0/8"], "127.0.0.1", "", True),
])
def test_the_allow_list_opens_exactly_what_it_names(entries, address, host, allowed):
    assert EgressPolicy.parse(entries).decide(address, host).allowed is allowed


@pytest.mark.parametrize("entry", ["http://10.0.0.1", "10.0.0.0/33", "host name", "a/b", "*", "*.", "-bad.example"])
def test_a_bad_allow_list_entry_is_named(entry):
    with pytest.raises(ValueError, match="VIGIL_EGRESS_ALLOW") as err:
        EgressPolicy.parse([entry])
    assert repr(entry) in str(err.value)


def test_a_hostname_is_not_an_address():
    decision = CLOSED.decide("localhost")
    assert not decision.allowed and "not an IP address" in decision.reason


@pytest.mark.parametrize(("url", "problem"), [
    ("https://hooks.example.com/x", None),
    ("http://10.0.0.1:8080/x", None),  # the scheme is fine; the address is judged separately
    ("HTTPS://Example.com", None),
    ("ftp://example.com/x", "must be an http or https URL, not 'ftp'"),
    ("file:///etc/passwd", "must be an http or https URL, not 'file'"),
    ("gopher://127.0.0.1:6379/_FLUSHALL", "must be an http or https URL, not 'gopher'"),
    ("example.com/hook", "must be an http or https URL, not 'scheme-less'"),
    ("http:///path", "has no host"),
    ("http://example.com:99999/", "is not a valid URL"),
    ("http://[::1/", "is not a valid URL"),
])
def test_url_problems(url, problem):
    assert url_problem(url) == problem


@pytest.mark.parametrize(("url", "allowed"), [
    ("http://127.0.0.1:9/x", False),
    ("http://[::1]:9/x", False),
    ("http://[::ffff:169.254.169.254]/latest/meta-data", False),
    ("http://169.254.169.254/latest/meta-data", False),
    ("https://8.8.8.8/x", True),
    ("http://localhost:9/x", True),  # a name: judged by the address it resolves to when sending
])
def test_literal_addresses_are_judged_at_save_time(url, allowed):
    assert literal_decision(CLOSED, url).allowed is allowed
