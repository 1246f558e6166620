"""The destination guard (SPEC §7): address policy, URL syntax, registration, connects."""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import AsyncIterator

import pytest
from aiohttp import web

from tidings.api.problems import status_of
from tidings.config import Settings, SettingsError, load_settings
from tidings.delivery.sender import Response, Sender
from tidings.destinations import SETTING, DestinationPolicy, DestinationRefused
from tidings.domain.errors import BadRequest, Invalid
from tidings.domain.models import AttemptError
from tidings.domain.networks import parse_networks

LOOPBACK = parse_networks("127.0.0.0/8,::1/128")
# Newer Pythons call all of 2002::/16 non-global; the policy defers to ipaddress there.
SIXTOFOUR_GLOBAL = ipaddress.ip_address("2002:808:808::1").is_global

ADDRESSES = [
    ("127.0.0.1", False),
    ("10.1.2.3", False),
    ("172.16.0.1", False),
    ("192.168.1.1", False),
    ("100.64.0.1", False),  # shared (CGNAT)
    ("169.254.169.254", False),  # cloud metadata
    ("0.0.0.0", False),
    ("255.255.255.255", False),
    ("224.0.0.1", False),
    ("233.252.0.1", False),  # globally scoped multicast is still multicast
    ("240.0.0.1", False),
    ("192.0.2.1", False),  # documentation
    ("8.8.8.8", True),
    ("1.1.1.1", True),
    ("::", False),
    ("::1", False),
    ("fe80::1", False),
    ("fe80::1%eth0", False),
    ("fc00::1", False),
    ("fd12:3456::1", False),
    ("ff0e::1", False),
    ("2001:db8::1", False),
    ("::ffff:127.0.0.1", False),
    ("::ffff:169.254.169.254", False),
    ("::ffff:8.8.8.8", True),
    ("::127.0.0.1", False),  # IPv4-compatible
    ("::8.8.8.8", True),
    ("2002:7f00:1::1", False),  # 6to4 of loopback
    ("2002:a00:1::1", False),  # 6to4 of 10.0.0.1
    ("2002:0808:0808::1", SIXTOFOUR_GLOBAL),
    ("64:ff9b::a00:1", False),  # NAT64 of 10.0.0.1
    ("64:ff9b::a9fe:a9fe", False),  # NAT64 of 169.254.169.254
    ("64:ff9b::808:808", True),  # NAT64 of 8.8.8.8
    ("64:ff9b:1::a00:1", False),  # local-use NAT64 prefix
    ("2001:0:4136:e378:8000:63bf:3fff:fdd2", False),  # Teredo, client 192.0.2.45
    ("2606:4700:4700::1111", True),
]


@pytest.mark.parametrize(("text", "allowed"), ADDRESSES)
def test_default_policy(text: str, allowed: bool) -> None:
    assert DestinationPolicy().is_allowed(ipaddress.ip_address(text)) is allowed


@pytest.mark.parametrize(
    ("text", "allowed"),
    [
        ("127.0.0.1", True),
        ("127.255.0.9", True),
        ("::1", True),
        ("::ffff:127.0.0.1", True),  # the same destination as 127.0.0.1
        ("2002:7f00:1::1", SIXTOFOUR_GLOBAL),
        ("10.0.0.1", False),
        ("169.254.169.254", False),
        ("64:ff9b::a00:1", False),
        ("8.8.8.8", True),
    ],
)
def test_allowed_networks_extend_the_default(text: str, allowed: bool) -> None:
    assert DestinationPolicy(LOOPBACK).is_allowed(ipaddress.ip_address(text)) is allowed


def test_allowed_network_may_admit_a_whole_ipv6_range() -> None:
    policy = DestinationPolicy(parse_networks("fc00::/7, 64:ff9b:1::/48"))
    assert policy.is_allowed(ipaddress.ip_address("fd00::5"))
    assert policy.is_allowed(ipaddress.ip_address("64:ff9b:1::a00:1"))
    # An IPv6 network never admits an IPv4 address by accident (and vice versa).
    assert not DestinationPolicy(parse_networks("::/0")).is_allowed(
        ipaddress.ip_address("10.0.0.1")
    )


def test_parse_networks() -> None:
    assert parse_networks("") == ()
    assert parse_networks(" 127.0.0.0/8 , 10.0.0.0/8,, ::1/128,") == (
        ipaddress.ip_network("127.0.0.0/8"),
        ipaddress.ip_network("10.0.0.0/8"),
        ipaddress.ip_network("::1/128"),
    )
    assert parse_networks("192.168.1.7") == (ipaddress.ip_network("192.168.1.7/32"),)


@pytest.mark.parametrize("text", ["nonsense", "10.0.0.0/33", "10.1.2.3/8", "127.0.0.0/8;10/8"])
def test_parse_networks_rejects_junk(text: str) -> None:
    with pytest.raises(ValueError, match="CIDR"):
        parse_networks(text)


@pytest.mark.parametrize(
    "url",
    [
        "ftp://example.com/",
        "file:///etc/passwd",
        "/relative/path",
        "example.com/hook",
        "//example.com/hook",
        "http://",
        "http:///path",
        "http://[::1",
        "http://example.com:99999/",
        "http://example.com:0/",
        "http://exa mple.com/",
        "http://a\\@127.0.0.1/",
        "http://example.com/" + "a" * 2048,
        "",
        "https://bücher.de/",  # ASCII only (docs/api.md): punycode it
    ],
)
def test_url_syntax_refused(url: str) -> None:
    with pytest.raises(BadRequest):
        DestinationPolicy().check_url_syntax(url)


@pytest.mark.parametrize(
    "url",
    [
        "http://example.com/hook",
        "HTTPS://Example.COM:8443/a?b=c",
        "http://user:pw@example.com/",
        "http://[2606:4700::1]:8080/",
        "https://xn--bcher-kva.de/",  # international names in punycode
        "http://10.0.0.1/",  # syntax only: the address is judged later
    ],
)
def test_url_syntax_accepted(url: str) -> None:
    assert DestinationPolicy().check_url_syntax(url) == url


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8080/",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::1]/",
        "http://[::ffff:127.0.0.1]/",
        "http://[fe80::1%25eth0]/",
        "http://localhost:9/",
        "http://LOCALHOST/",
        "http://2130706433/",  # decimal 127.0.0.1, as getaddrinfo reads it
        "http://127.1/",
    ],
)
async def test_registration_refuses_non_public(url: str) -> None:
    with pytest.raises(Invalid) as caught:
        await DestinationPolicy().check_at_registration(url)
    assert status_of(caught.value) == 422
    assert SETTING in (caught.value.detail or "")


async def test_registration_names_the_field() -> None:
    with pytest.raises(Invalid) as caught:
        await DestinationPolicy().check_at_registration("http://10.0.0.1/", field="notify_url")
    assert [v.path for v in caught.value.errors] == ["$.notify_url"]


async def test_registration_checks_syntax_first() -> None:
    with pytest.raises(BadRequest):
        await DestinationPolicy().check_at_registration("gopher://localhost/")


async def test_registration_with_allow_list() -> None:
    policy = DestinationPolicy(LOOPBACK)
    await policy.check_at_registration("http://localhost:9/hook")
    await policy.check_at_registration("http://127.0.0.1:9/hook")
    await policy.check_at_registration("http://8.8.8.8/hook")  # public literal: no DNS involved


async def test_unresolvable_name_accepted_at_registration_refused_at_attempt() -> None:
    policy = DestinationPolicy()
    await policy.check_at_registration("http://does-not-exist.invalid/hook")
    with pytest.raises(DestinationRefused, match="did not resolve"):
        await policy.resolve("does-not-exist.invalid", 80)


async def test_resolve_returns_only_checked_addresses() -> None:
    with pytest.raises(DestinationRefused, match=SETTING):
        await DestinationPolicy().resolve("localhost", 80)
    with pytest.raises(DestinationRefused):
        await DestinationPolicy().resolve("169.254.169.254", 80)
    resolved = await DestinationPolicy(LOOPBACK).resolve("localhost", 80)
    assert resolved
    assert all(r.address.is_loopback and r.port == 80 for r in resolved)
    # Literals skip DNS.
    [public] = await DestinationPolicy().resolve("8.8.8.8", 443)
    assert (public.address, public.family) == (ipaddress.ip_address("8.8.8.8"), socket.AF_INET)


@pytest.fixture
async def server_port() -> AsyncIterator[int]:
    async def ok(_: web.Request) -> web.Response:
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_get("/", ok)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    yield int(runner.addresses[0][1])
    await runner.cleanup()


async def _get(policy: DestinationPolicy, url: str) -> Response:
    sender = Sender(policy, 4)
    try:
        return await sender.request("GET", url, 5.0)
    finally:
        await sender.close()


@pytest.mark.parametrize("host", ["localhost", "127.0.0.1", "[::ffff:127.0.0.1]"])
async def test_the_sender_connects_only_to_checked_addresses(server_port: int, host: str) -> None:
    # Names go through DNS, literals skip it: the policy judges both, with its reason.
    url = f"http://{host}:{server_port}/"
    refused = await _get(DestinationPolicy(), url)
    assert refused.failure is AttemptError.ADDRESS_REFUSED and refused.status is None
    assert refused.error is not None and SETTING in refused.error
    if host != "[::ffff:127.0.0.1]":  # allowed, it would need a dual-stack socket
        answer = await _get(DestinationPolicy(LOOPBACK), url)
        assert (answer.status, answer.body) == (200, b"ok")


def test_allowed_networks_are_parsed_once_into_the_settings() -> None:
    settings = load_settings({"TIDINGS_ALLOWED_NETWORKS": " 10.0.0.0/8 ,::1/128,"})
    assert settings.allowed_networks == parse_networks("10.0.0.0/8,::1/128")
    assert DestinationPolicy(settings.allowed_networks).is_allowed(ipaddress.ip_address("::1"))
    with pytest.raises(SettingsError, match=SETTING):
        load_settings({"TIDINGS_ALLOWED_NETWORKS": "10.0.0.0/8,intranet"})
    # Code may write them as text; the settings still hold networks.
    written = Settings(allowed_networks=("10.0.0.0/8", "::1/128"), trusted_proxies=("10.1.2.3",))
    assert written.allowed_networks == settings.allowed_networks
    assert written.trusted_proxies == parse_networks("10.1.2.3/32")
