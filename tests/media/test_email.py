"""Email over real SMTP: aiosmtplib against an aiosmtpd server (plain, AUTH, STARTTLS, implicit TLS)."""

from __future__ import annotations

import asyncio
import datetime as dt
import ipaddress
import socket
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from bot.adapters.errors import DeliveryError
from bot.media.base import Contact, Message
from bot.media.email import EmailConfig, EmailProvider

LOGIN = "vigil"
PASSWORD = "smtp-pass-Xy7Qw9Lk3"


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    mail: EmailMessage
    tls: bool
    login: bytes | None


@dataclass
class Recorder:
    """aiosmtpd handler that records accepted mail and can be told to refuse RCPT or DATA."""

    received: list[Received] = field(default_factory=list)
    rcpt_reply: str | None = None
    data_reply: str | None = None

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        if self.rcpt_reply:
            return self.rcpt_reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.data_reply:
            return self.data_reply
        mail = message_from_bytes(envelope.original_content, policy=policy.default)
        login = session.auth_data.login if isinstance(session.auth_data, LoginPassword) else None
        tls = server.transport.get_extra_info("ssl_object") is not None
        self.received.append(Received(envelope.mail_from, list(envelope.rcpt_tos), mail, tls, login))
        return "250 Message accepted for delivery"


def authenticator(server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any) -> AuthResult:
    ok = isinstance(auth_data, LoginPassword) and (auth_data.login, auth_data.password) == (
        LOGIN.encode(),
        PASSWORD.encode(),
    )
    # handled=False: aiosmtpd itself answers 535 on failure (handled=True would leave the client waiting).
    return AuthResult(success=ok, handled=False, auth_data=auth_data if ok else None)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for localhost / 127.0.0.1, made here with `cryptography`."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    folder = tmp_path_factory.mktemp("smtp-tls")
    cert_file, key_file = folder / "cert.pem", folder / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return cert_file, key_file


def server_tls(certificate: tuple[Path, Path]) -> Any:
    import ssl

    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(*map(str, certificate))
    return context


@dataclass
class Smtp:
    recorder: Recorder
    port: int


def start(recorder: Recorder, **kwargs: Any) -> Iterator[Smtp]:
    port = free_port()
    controller = Controller(recorder, hostname="127.0.0.1", port=port, **kwargs)
    controller.start()
    try:
        yield Smtp(recorder, port)
    finally:
        controller.stop()


@pytest.fixture
def plain() -> Iterator[Smtp]:
    yield from start(Recorder(), authenticator=authenticator, auth_require_tls=False)


@pytest.fixture
def starttls(certificate) -> Iterator[Smtp]:
    yield from start(
        Recorder(), tls_context=server_tls(certificate), require_starttls=True, authenticator=authenticator
    )


@pytest.fixture
def implicit_tls(certificate) -> Iterator[Smtp]:
    yield from start(Recorder(), ssl_context=server_tls(certificate), authenticator=authenticator)


@pytest.fixture
async def silent() -> AsyncIterator[int]:
    """A TCP server that accepts and never greets: an SMTP server that hangs."""
    writers: list[asyncio.StreamWriter] = []
    server = await asyncio.start_server(lambda _r, w: writers.append(w), "127.0.0.1", 0)
    yield server.sockets[0].getsockname()[1]
    for writer in writers:
        writer.close()
    server.close()
    await server.wait_closed()


def config(port: int, **overrides: Any) -> EmailConfig:
    values: dict[str, Any] = dict(
        host="127.0.0.1", port=port, from_addr="Vigil <vigil@example.com>", start_tls=False, timeout=5.0
    )
    return EmailConfig(**{**values, **overrides})


async def test_plain_text_mail_is_delivered(plain, alice):
    message = Message(
        subject="[Warning] disk 85% on web-3", text="web-3 /var is 85% full.", incident_id="inc-7"
    )
    message_id = await EmailProvider(config(plain.port)).send(alice, message)

    [got] = plain.recorder.received
    assert (got.mail_from, got.rcpt_tos) == ("vigil@example.com", ["alice@example.com"])
    assert got.mail["Subject"] == message.subject
    assert got.mail["To"] == "Alice Liddell <alice@example.com>"
    assert got.mail["Message-ID"] == message_id and message_id.endswith("@example.com>")
    assert got.mail["X-Vigil-Incident"] == "inc-7"
    assert got.mail.get_content_type() == "text/plain"
    assert got.mail.get_content().strip() == message.text
    assert (got.tls, got.login) == (False, None)


async def test_html_makes_a_multipart_alternative(plain, alice, page):
    await EmailProvider(config(plain.port)).send(alice, page)

    [got] = plain.recorder.received
    assert got.mail.get_content_type() == "multipart/alternative"
    assert got.mail.get_body(("plain",)).get_content().strip() == page.text
    assert got.mail.get_body(("html",)).get_content().strip() == page.html


async def test_auth_login_is_used(plain, alice, page):
    await EmailProvider(config(plain.port, username=LOGIN, password=PASSWORD)).send(alice, page)

    assert plain.recorder.received[0].login == LOGIN.encode()


async def test_wrong_password_is_permanent_and_never_shown(plain, alice, page, assert_no_secret):
    wrong = "not-the-password-4Rt"
    with pytest.raises(DeliveryError) as caught:
        await EmailProvider(config(plain.port, username=LOGIN, password=wrong)).send(alice, page)

    assert not caught.value.retryable
    assert "535" in str(caught.value)
    assert_no_secret(caught.value, wrong, PASSWORD)
    assert plain.recorder.received == []


async def test_starttls_with_auth_against_self_signed_server(starttls, certificate, alice, page):
    cfg = config(
        starttls.port, start_tls=True, ca_file=str(certificate[0]), username=LOGIN, password=PASSWORD
    )
    await EmailProvider(cfg).send(alice, page)

    [got] = starttls.recorder.received
    assert (got.tls, got.login) == (True, LOGIN.encode())


async def test_implicit_tls(implicit_tls, certificate, alice, page):
    cfg = config(implicit_tls.port, use_tls=True, start_tls=None, ca_file=str(certificate[0]))
    await EmailProvider(cfg).send(alice, page)

    assert implicit_tls.recorder.received[0].tls


async def test_untrusted_certificate_is_permanent(starttls, alice, page):
    with pytest.raises(DeliveryError) as caught:
        await EmailProvider(config(starttls.port, start_tls=True)).send(alice, page)

    assert not caught.value.retryable
    assert starttls.recorder.received == []


async def test_server_requiring_starttls_refuses_plain_mail(starttls, alice, page):
    with pytest.raises(DeliveryError) as caught:
        await EmailProvider(config(starttls.port, start_tls=False)).send(alice, page)

    assert not caught.value.retryable
    assert "530" in str(caught.value)


async def test_starttls_demanded_but_not_offered_is_permanent(plain, alice, page):
    with pytest.raises(DeliveryError) as caught:
        await EmailProvider(config(plain.port, start_tls=True)).send(alice, page)

    assert not caught.value.retryable


@pytest.mark.parametrize(
    ("rcpt_reply", "data_reply", "retryable"),
    [
        ("550 5.1.1 No such user", None, False),
        ("450 4.2.1 Mailbox busy", None, True),
        ("452 4.3.1 Insufficient system storage", None, True),
        (None, "554 5.7.1 Message rejected as spam", False),
        (None, "451 4.3.0 Try again later", True),
    ],
)
async def test_smtp_replies_are_classified(
    plain, alice, page, assert_no_secret, rcpt_reply, data_reply, retryable
):
    plain.recorder.rcpt_reply, plain.recorder.data_reply = rcpt_reply, data_reply

    with pytest.raises(DeliveryError) as caught:
        await EmailProvider(config(plain.port, username=LOGIN, password=PASSWORD)).send(alice, page)

    assert caught.value.retryable is retryable
    assert (rcpt_reply or data_reply or "")[:3] in str(caught.value)
    assert_no_secret(caught.value, PASSWORD)


async def test_connection_refused_is_retryable(alice, page, assert_no_secret):
    with pytest.raises(DeliveryError) as caught:
        await EmailProvider(config(free_port(), username=LOGIN, password=PASSWORD)).send(alice, page)

    assert caught.value.retryable
    assert_no_secret(caught.value, PASSWORD)


async def test_silent_server_times_out_as_retryable(silent, alice, page, assert_no_secret):
    with pytest.raises(DeliveryError) as caught:
        await EmailProvider(config(silent, timeout=0.2, username=LOGIN, password=PASSWORD)).send(alice, page)

    assert caught.value.retryable
    assert "timed out" in str(caught.value)
    assert_no_secret(caught.value, PASSWORD)


async def test_member_without_email_is_permanent(plain, page):
    with pytest.raises(DeliveryError) as caught:
        await EmailProvider(config(plain.port)).send(Contact(member_id=5, name="Nobody"), page)

    assert not caught.value.retryable
    assert plain.recorder.received == []


@pytest.mark.parametrize(
    ("overrides", "named"),
    [
        ({"use_tls": True, "start_tls": True}, "use_tls"),
        ({"username": "u"}, "username and password"),
        ({"from_addr": "Vigil"}, "from_addr"),
        ({"port": 0}, "port"),
    ],
)
def test_bad_config_names_the_field(overrides, named):
    with pytest.raises(ValueError, match=named):
        EmailConfig(**{"host": "smtp.example.com", "from_addr": "vigil@example.com", **overrides})
