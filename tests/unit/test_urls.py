"""The listener URL grammar (tidings.domain.urls): the pattern /openapi.json publishes
means the same to a JSON Schema validator (ECMAScript regex) as to the server, and
every URL it admits is one the server's parser (yarl) takes with a sane host."""

from __future__ import annotations

import ipaddress

import jsonschema_rs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tidings.destinations import DestinationPolicy
from tidings.domain.errors import BadRequest
from tidings.domain.urls import URL_PATTERN, is_listener_url

# The validator schemathesis (and many gateways) use, with ECMAScript semantics.
_VALIDATOR = jsonschema_rs.validator_for({"type": "string", "pattern": URL_PATTERN})
_POLICY = DestinationPolicy()

_ASCII = st.characters(min_codepoint=0, max_codepoint=127)
_NEAR_MISSES = st.one_of(
    st.text(_ASCII, max_size=40),
    st.builds(lambda s: "http://" + s, st.text(_ASCII, max_size=40)),
    st.builds(lambda s: "https://a" + s, st.text(st.characters(codec="utf-8"), max_size=20)),
    st.builds(lambda s: f"http://[{s}]/", st.text("0123456789abcdef:.%", max_size=45)),
)


@given(st.from_regex(URL_PATTERN, fullmatch=True).filter(lambda u: len(u) <= 2048))
@settings(max_examples=100)
def test_every_url_the_pattern_admits_is_taken(url: str) -> None:
    assert _VALIDATOR.is_valid(url)
    assert is_listener_url(url)
    assert _POLICY.check_url_syntax(url) == url


@given(_NEAR_MISSES)
@settings(max_examples=1000)
def test_the_server_and_a_json_schema_validator_agree(text: str) -> None:
    if is_listener_url(text):
        assert _VALIDATOR.is_valid(text)
        assert _POLICY.check_url_syntax(text) == text
    else:
        assert not _VALIDATOR.is_valid(text), text
        with pytest.raises(BadRequest):
            _POLICY.check_url_syntax(text)


@given(st.ip_addresses(v=6))
def test_every_ipv6_literal_is_admitted(address: ipaddress.IPv6Address) -> None:
    for text in {str(address), address.exploded}:
        assert is_listener_url(f"https://[{text}]:8443/hook")


@pytest.mark.parametrize(
    "url",
    [
        "https://bücher.de/",  # international names are written in punycode
        "http://example.com/ä",  # other characters percent-encoded
        "http://a..b/",
        "http://-a.example/",
        "http://example.com:080/",
        "http://[1:2:3:4:5:6:7:8:9]/",
        "http://[::1::]/",
        "http://[::256.1.1.1]/",
        "http://example.com/\n",
        "http://example.com/ x",
    ],
)
def test_refused(url: str) -> None:
    assert not is_listener_url(url)
    assert not _VALIDATOR.is_valid(url)


@pytest.mark.parametrize(
    "url",
    [
        "https://xn--bcher-kva.de/",
        "http://[fe80::1%25eth0]:80/x",
        "http://[::ffff:127.0.0.1]/",
        "http://u:p%40ss@example.com./a/b?c=d#e",
        "HTTP://EXAMPLE.COM",
        "http://2130706433/",
        "http://under_score.example:65535/",
    ],
)
def test_admitted(url: str) -> None:
    assert is_listener_url(url) and _VALIDATOR.is_valid(url)
