"""SIP/SIPS/tel URIs (RFC 3261 s19.1, s25.1; RFC 3966)."""

from __future__ import annotations

import pytest

from focus.sip.errors import SipParseError
from focus.sip.message import Request
from focus.sip.uri import (
    AbsoluteURI,
    Params,
    SipURI,
    TelURI,
    format_hostport,
    parse_hostport,
    parse_uri,
    redacted,
)


def sip(text: str) -> SipURI:
    uri = parse_uri(text)
    assert isinstance(uri, SipURI)
    return uri


# The examples of RFC 3261 s19.1.3.
@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("sip:alice@atlanta.com", SipURI("atlanta.com", "alice")),
        (
            "sip:alice:secretword@atlanta.com;transport=tcp",
            SipURI("atlanta.com", "alice", "secretword", params=Params({"transport": "tcp"})),
        ),
        (
            "sips:alice@atlanta.com?subject=project%20x&priority=urgent",
            SipURI(
                "atlanta.com",
                "alice",
                headers=(("subject", "project x"), ("priority", "urgent")),
                scheme="sips",
            ),
        ),
        (
            "sip:+1-212-555-1212:1234@gateway.com;user=phone",
            SipURI("gateway.com", "+1-212-555-1212", "1234", params=Params({"user": "phone"})),
        ),
        ("sips:1212@gateway.com", SipURI("gateway.com", "1212", scheme="sips")),
        ("sip:alice@192.0.2.4", SipURI("192.0.2.4", "alice")),
        (
            "sip:atlanta.com;method=REGISTER?to=alice%40atlanta.com",
            SipURI(
                "atlanta.com",
                params=Params({"method": "REGISTER"}),
                headers=(("to", "alice@atlanta.com"),),
            ),
        ),
        ("sip:alice;day=tuesday@atlanta.com", SipURI("atlanta.com", "alice;day=tuesday")),
        (
            "sip:[2001:db8::10]:5070;lr",
            SipURI("[2001:db8::10]", port=5070, params=Params({"lr": None})),
        ),
    ],
)
def test_rfc3261_examples(text: str, expected: SipURI) -> None:
    uri = sip(text)
    assert uri == expected
    assert parse_uri(str(uri)) == uri


def test_serialization_escapes_only_what_must_be() -> None:
    uri = SipURI("example.com", "a b@c", params=Params({"x": "1 2"}), headers=(("h", "v&w"),))
    assert str(uri) == "sip:a%20b%40c@example.com;x=1%202?h=v%26w"
    assert sip(str(uri)) == uri


def test_escapes_are_case_insensitive_and_decoded() -> None:
    assert sip("sip:%61lice@atlanta.com") == sip("sip:alice@atlanta.com")
    assert sip("sip:%c3%a9@x.com").user == "é"


def test_non_utf8_escape_survives_round_trip() -> None:
    uri = sip("sip:%FF%FE@example.com")
    assert str(uri) == "sip:%FF%FE@example.com"


@pytest.mark.parametrize(
    "text",
    [
        "sip:",
        "sip:@example.com",
        "sip:user@",
        "sip:user@exa mple.com",
        "sip:user@example.com:99999",
        "sip:user@example.com:5x",
        "sip:user@[::1",
        "sip:user@[zz::1]",
        "sip:us%zzer@example.com",
        "sip:user@example.com?novalue",
        "sip:user@-example.com",
        "sip:user@example..com",
        "sip:user@example.com;a b",
        "sip:<user>@example.com",
        "tel:",
        "tel:+",
        "tel:abc xyz",
        "1nvalid:scheme",
        "noscheme",
        "http:has space",
    ],
)
def test_malformed_uris_raise_parse_error(text: str) -> None:
    with pytest.raises(SipParseError) as info:
        parse_uri(text)
    assert info.value.status == 400


def test_tel_uri() -> None:
    uri = parse_uri("tel:+1-201-555-0123;ext=1234")
    assert uri == TelURI("+1-201-555-0123", Params({"ext": "1234"}))
    assert isinstance(uri, TelURI) and uri.is_global
    assert str(uri) == "tel:+1-201-555-0123;ext=1234"
    local = parse_uri("tel:7042;phone-context=example.com")
    assert isinstance(local, TelURI) and not local.is_global


def test_unknown_scheme_is_opaque_and_lower_cased() -> None:
    assert parse_uri("URN:service:sos") == AbsoluteURI("urn", "service:sos")
    assert str(parse_uri("mailto:a@b.example")) == "mailto:a@b.example"


def test_scheme_is_case_insensitive() -> None:
    assert sip("SIP:alice@atlanta.com").scheme == "sip"
    assert sip("SiPs:alice@atlanta.com").secure


def test_accessors() -> None:
    uri = sip("sip:Alice@Atlanta.COM:5060;Transport=TCP;lr")
    assert uri.transport == "tcp"
    assert uri.aor == "sip:Alice@atlanta.com"
    assert "lr" in uri.params and uri.params["lr"] is None
    assert uri.with_params(maddr="192.0.2.1").params["maddr"] == "192.0.2.1"


# RFC 3261 s19.1.4: equivalent and non-equivalent URIs.
@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("sip:%61lice@atlanta.com;transport=TCP", "sip:alice@AtLanTa.CoM;Transport=tcp"),
        ("sip:carol@chicago.com", "sip:carol@chicago.com;newparam=5"),
        ("sip:carol@chicago.com", "sip:carol@chicago.com;security=on"),
        (
            "sip:biloxi.com;transport=tcp;method=REGISTER?to=sip:bob%40biloxi.com",
            "sip:biloxi.com;method=REGISTER;transport=tcp?to=sip:bob%40biloxi.com",
        ),
        (
            "sip:alice@atlanta.com?subject=project%20x&priority=urgent",
            "sip:alice@atlanta.com?priority=urgent&subject=project%20x",
        ),
    ],
)
def test_equivalent(a: str, b: str) -> None:
    assert sip(a).equivalent(sip(b))
    assert sip(b).equivalent(sip(a))


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("SIP:ALICE@AtLanTa.CoM;Transport=udp", "sip:alice@AtLanTa.CoM;Transport=UDP"),
        ("sip:bob@biloxi.com", "sip:bob@biloxi.com:5060"),
        ("sip:bob@biloxi.com", "sip:bob@biloxi.com;transport=udp"),
        ("sip:bob@biloxi.com", "sip:bob@biloxi.com:6000;transport=tcp"),
        ("sip:carol@chicago.com", "sip:carol@chicago.com?Subject=next%20meeting"),
        ("sip:bob@phone21.boxesbybob.com", "sip:bob@192.0.2.4"),
        ("sip:carol@chicago.com;security=on", "sip:carol@chicago.com;security=off"),
    ],
)
def test_not_equivalent(a: str, b: str) -> None:
    assert not sip(a).equivalent(sip(b))
    assert not sip(b).equivalent(sip(a))


def test_hostport_helpers() -> None:
    assert parse_hostport("example.com:5061") == ("example.com", 5061)
    assert parse_hostport("[::1]:5060") == ("[::1]", 5060)
    assert parse_hostport("192.0.2.1") == ("192.0.2.1", None)
    assert format_hostport("::1", 5060) == "[::1]:5060"
    assert format_hostport("example.com", None) == "example.com"
    with pytest.raises(SipParseError):
        parse_hostport("[::1]x")


def test_params_mapping() -> None:
    p = Params([("A", "1"), ("b", None)])
    assert p["a"] == "1" and "B" in p and "c" not in p
    assert p == Params([("a", "1"), ("B", None)])
    assert hash(p) == hash(Params([("a", "1"), ("B", None)]))
    assert p.set("a", "2")["A"] == "2"
    assert p.set("c", None).pairs[-1] == ("c", None)
    assert "a" not in p.remove("A")
    assert p == {"a": "1", "b": None}
    # get: present with a value, present without one, absent (with and without default)
    assert p.get("A") == "1" and p.get("b") is None and p.get("b", "x") is None
    assert p.get("c") is None and p.get("c", "dflt") == "dflt"
    with pytest.raises(KeyError):
        p["c"]
    dup = Params([("x", "first"), ("X", "second")])
    assert dup.get("x") == "first" and dup["X"] == "first"


def test_bare_ipv6_host_gets_brackets() -> None:
    assert SipURI("::1", port=5060) == sip("sip:[::1]:5060")
    assert str(SipURI("2001:db8::1")) == "sip:[2001:db8::1]"


def test_redacted_hides_conference_passwords_for_logs() -> None:
    """Issue 10: a ``password`` URI parameter (dial-in) or user:password never reaches a log."""
    assert redacted("sip:conf7@h;password=s3cret;transport=tcp") == (
        "sip:conf7@h;password=***;transport=tcp"
    )
    assert redacted(parse_uri("sip:bob:hunter2@h:5070")) == "sip:bob:***@h:5070"
    assert redacted("sip:conf7@h") == "sip:conf7@h"
    assert "s3cret" not in redacted("not a uri;password=s3cret")
    req = Request("INVITE", parse_uri("sip:conf7@h;PASSWORD=s3cret"))
    assert "s3cret" not in repr(req) and "conf7@h" in repr(req)
