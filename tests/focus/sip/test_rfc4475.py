"""RFC 4475 torture tests: every message of section 3, byte for byte from Appendix A.

The .dat files come from tests/vectors/rfc4475/extract.py. Valid messages are checked for the
values the RFC text points out; invalid ones for the error (and status) the RFC asks for. Every
message is also fed to the StreamParser, and every accepted one must survive
serialize -> parse unchanged.
"""

from __future__ import annotations

import pytest

from focus.sip.errors import BadExtensionError, SipParseError
from focus.sip.message import Message, Request, Response, check_require, make_response
from focus.sip.parser import ParserConfig, StreamParser, parse_message
from focus.sip.uri import AbsoluteURI, Params, SipURI
from tests.paths import VECTORS as TEST_VECTORS

VECTORS = TEST_VECTORS / "rfc4475"
NAMES = sorted(p.stem for p in VECTORS.glob("*.dat"))


def load(name: str) -> bytes:
    return (VECTORS / f"{name}.dat").read_bytes()


def parse(name: str) -> Request | Response:
    return parse_message(load(name))


def request(name: str) -> Request:
    msg = parse(name)
    assert isinstance(msg, Request)
    return msg


def error(name: str, config: ParserConfig | None = None) -> SipParseError:
    with pytest.raises(SipParseError) as info:
        if config is None:
            parse_message(load(name))
        else:
            parse_message(load(name), config)
    return info.value


def sip(uri: object) -> SipURI:
    assert isinstance(uri, SipURI)
    return uri


def test_all_49_messages_are_present() -> None:
    assert len(NAMES) == 49
    assert "test" not in NAMES


# --- 3.1.1 valid messages ----------------------------------------------------------------


def test_wsinv_short_tortuous_invite() -> None:
    req = request("wsinv")
    assert req.method == "INVITE"
    assert sip(req.uri).params == Params({"unknownparam": None})
    assert str(req.to.uri) == "sip:vivekg@chair-dnrc.example.com"
    assert req.to.tag == "1918181833n"
    assert req.from_.display_name == 'J Rosenberg \\"'
    assert req.from_.tag == "98asjd8"
    assert req.max_forwards == 68  # leading zeros
    assert (req.cseq.number, req.cseq.method) == (9, "INVITE")
    assert [(v.transport, v.host, v.branch) for v in req.via] == [
        ("UDP", "192.0.2.2", "390skdjuw"),
        ("TCP", "spindle.example.com", "z9hG4bK9ikj8"),
        ("UDP", "192.168.255.111", "z9hG4bK30239"),
    ]
    assert req.headers.get("Subject") == ""  # the empty "s :"
    assert req.headers.get("NewFangledHeader") == "newfangled value continued newfangled value"
    assert req.headers.get("UnknownHeaderWithUnusualValue") == ";;,,;;,;"
    (route,) = req.route
    assert sip(route.uri).params == Params(
        [("lr", None), ("unknownwith", "value"), ("unknown-no-value", None)]
    )
    contact = req.contact
    assert contact != "*"
    assert contact[0].display_name == 'Quoted string ""'
    assert contact[0].params == Params(
        [("newparam", "newvalue"), ("secondparam", None), ("q", "0.33")]
    )
    assert req.content_type is not None and req.content_type.mime == "application/sdp"
    assert len(req.body) == 150


def test_intmeth_wide_range_of_valid_characters() -> None:
    req = request("intmeth")
    assert req.method == "!interesting-Method0123456789_*+`.%indeed'~"
    assert req.cseq.method == req.method
    uri = sip(req.uri)
    assert uri.user == "1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*"
    assert uri.password == "&it+has=1,weird!*pas$wo~d_too.(doesn't-it)"
    assert uri.host == "example.com"
    assert req.via[0].branch == "z9hG4bK-.!%66*_+`'~"
    assert req.to.display_name == "BEL:\x07 NUL:\x00 DEL:\x7f"
    assert req.from_.display_name == "token1~` token2'+_ token3*%!.-"
    assert req.from_.params["fromParam''~+*_!.-%"] == "работающий"
    assert req.from_.tag == "_token~1'+`*%!-."
    assert req.call_id == "intmeth.word%ZK-!.*_+'@word`~)(><:\\/\"][?}{"
    assert req.headers.get("extensionHeader-!.%*+_`'~") == "\ufeff大停電"


def test_esc01_valid_escaping() -> None:
    req = request("esc01")
    assert sip(req.uri).user == "sips:user@example.com"
    assert sip(req.to.uri).user == "user"
    assert sip(req.from_.uri).user == "I have spaces"
    contact = req.contact
    assert contact != "*"
    uri = sip(contact[0].uri)
    assert uri.user == "caller"
    assert uri.params == Params([("lr", None), ("name", "value%41")])


def test_escnull_two_distinct_contacts() -> None:
    req = request("escnull")
    assert sip(req.to.uri).user == "null-\x00-null"
    contact = req.contact
    assert contact != "*"
    assert [sip(c.uri).user for c in contact] == ["\x00", "\x00\x00"]


def test_esc02_percent_that_is_not_an_escape() -> None:
    req = request("esc02")
    assert req.method == "RE%47IST%45R"  # NOT "REGISTER"
    assert req.to.display_name == "%Z%45"
    assert req.from_.display_name == "%Z%45"
    contact = req.contact
    assert contact != "*"
    assert len(contact) == 2
    assert req.headers.get("C%6Fntact") == "<sip:alias2@host2.example.com>"
    assert req.via[0].branch == "z9hG4bK209%fzsnel234"


def test_lwsdisp_no_lws_before_angle() -> None:
    req = request("lwsdisp")
    assert req.from_.display_name == "caller"
    assert req.from_.tag == "323"


def test_longreq_long_values() -> None:
    req = request("longreq")
    assert req.to.display_name == "I have a user name of " + "extreme" * 10 + " proportion"
    to_uri = sip(req.to.uri)
    assert to_uri.port == 6000
    assert to_uri.params["unknownparam1"] == "very" + "long" * 20 + "value"
    assert to_uri.params["longparam" + "name" * 25] == "shortvalue"
    assert ("very" + "long" * 25 + "ParameterNameWithNoValue") in to_uri.params
    assert sip(req.from_.uri).user == "amazinglylongcallername" * 5
    assert req.from_.tag == "12" + "982" * 50 + "424"
    assert req.call_id == "longreq.one" + "really" * 20 + "longcallid"
    name = "Unknown-" + "Long" * 20 + "-Name"
    assert req.headers.get(name) == (
        "unknown-" + "long" * 20 + "-value; unknown-" + "long" * 20 + "-parameter-name = "
        "unknown-" + "long" * 20 + "-parameter-value"
    )
    vias = req.via
    assert len(vias) == 34
    assert [v.host for v in vias[:33]] == [f"sip{i}.example.com" for i in range(33, 0, -1)]
    assert vias[33].received == "192.0.2.5"
    assert vias[33].branch == "very" + "long" * 50 + "branchvalue"
    assert len(req.body) == 150


def test_dblreq_extra_octets_ignored() -> None:
    req = request("dblreq")
    assert req.method == "REGISTER"
    assert req.body == b""
    assert b"INVITE" not in bytes(req)


def test_semiuri_user_with_semicolon() -> None:
    req = request("semiuri")
    uri = sip(req.uri)
    assert uri.user == "user;par=u@example.net"
    assert uri.host == "example.com"
    assert uri.params == Params()
    assert [m.mime for m in req.headers.media_types("Accept")] == [
        "application/sdp",
        "application/pkcs7-mime",
        "multipart/mixed",
        "multipart/signed",
        "message/sip",
        "message/sipfrag",
    ]


def test_transports_all_kinds() -> None:
    req = request("transports")
    assert [v.transport for v in req.via] == ["UDP", "SCTP", "TLS", "UNKNOWN", "TCP"]
    assert req.call_id == "transports.kijh4akdnaqjkwendsasfdj"


def test_mpart01_binary_multipart_framed_by_content_length() -> None:
    req = request("mpart01")
    assert req.content_type is not None
    assert req.content_type.mime == "multipart/mixed"
    assert req.content_type.params["boundary"] == "7a9cbec02ceef655"
    assert len(req.body) == 553
    assert b"\x00" in req.body
    assert req.body.endswith(b"--7a9cbec02ceef655--\r\n")
    assert req.via[0].has_rport and req.via[0].rport is None


def test_unreason_utf8_reason_phrase() -> None:
    resp = parse("unreason")
    assert isinstance(resp, Response)
    assert resp.status == 200
    assert resp.reason == "= 2**3 * 5**2 но сто девяносто девять - простое"


def test_noreason_empty_reason_phrase() -> None:
    resp = parse("noreason")
    assert isinstance(resp, Response)
    assert (resp.status, resp.reason) == (100, "")


# --- 3.1.2 invalid messages --------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "fault"),
    [
        ("badinv01", "Via"),  # 3.1.2.1 extraneous separators
        ("clerr", "Content-Length"),  # 3.1.2.2 on UDP
        ("ncl", "Content-Length"),  # 3.1.2.3
        ("scalar02", "CSeq"),  # 3.1.2.4: 400 due to the CSeq error
        ("quotbal", "display name"),  # 3.1.2.6
        ("ltgtruri", "Request-URI"),  # 3.1.2.7
        ("lwsruri", "Request-Line"),  # 3.1.2.8
        ("lwsstart", "Request-Line"),  # 3.1.2.9
        ("trws", "Request-Line"),  # 3.1.2.10
        ("escruri", "Request-URI"),  # 3.1.2.11
        ("regbadct", "Contact"),  # 3.1.2.13
        ("badaspec", "To"),  # 3.1.2.14
        ("baddn", "display name"),  # 3.1.2.15
        ("mismatch01", "CSeq"),  # 3.1.2.17
        ("insuf", "Missing"),  # 3.3.1
        ("multi01", "Multiple"),  # 3.3.8
        ("mcl01", "Content-Length"),  # 3.3.9
    ],
)
def test_invalid_requests_get_400_naming_the_fault(name: str, fault: str) -> None:
    exc = error(name)
    assert exc.status == 400
    assert exc.reason.startswith("Bad Request - ")
    assert fault in exc.reason
    # The header fields are kept so that a UAS can answer (RFC 3261 s8.2.6).
    assert exc.message is not None
    response = make_response(exc.message, exc.status, exc.reason)
    assert response.headers.get_all("Via") == exc.message.headers.get_all("Via")
    wire = bytes(response)
    assert wire.startswith(f"SIP/2.0 400 {exc.reason}\r\n".encode())


def test_scalar02_other_overlarge_fields() -> None:
    exc = error("scalar02")
    msg = exc.message
    assert msg is not None
    with pytest.raises(SipParseError, match="Max-Forwards"):
        msg.max_forwards  # noqa: B018 -- 300 is out of range
    assert msg.expires == 2**32 - 1  # RFC 3261 s20.19 clamp
    contact = msg.contact
    assert contact != "*"
    assert contact[0].expires == 2**32 - 1


def test_insuf_missing_headers_can_still_be_answered() -> None:
    exc = error("insuf")
    assert exc.message is not None
    response = make_response(exc.message, 400, exc.reason)
    assert response.headers.get("Call-ID") is None
    assert response.cseq.method == "INVITE"


@pytest.mark.parametrize("name", ["scalarlg", "bigcode"])
def test_invalid_responses_are_rejected(name: str) -> None:
    # 3.1.2.5 and 3.1.2.19: the receiver simply drops such a response.
    exc = error(name)
    assert exc.status == 400


def test_mismatch02_unknown_method_gets_501() -> None:
    # 3.1.2.18: 400 is acceptable, 501 preferred for an unknown method.
    exc = error("mismatch02")
    assert exc.status == 501
    assert isinstance(exc.message, Request) and exc.message.method == "NEWMETHOD"


def test_badvers_gets_505() -> None:
    exc = error("badvers")
    assert exc.status == 505
    assert exc.message is not None
    assert exc.message.headers.get("Call-ID") == "badvers.31417@c.example.com"


def test_baddate_is_accepted_since_date_is_not_interpreted() -> None:
    # 3.1.2.12: rejecting is only warranted if the Date matters; to us it does not.
    req = request("baddate")
    assert req.headers.get("Date") == "Fri, 01 Jan 2010 16:00:00 EST"


def test_clerr_on_a_stream_waits_for_more_data() -> None:
    parser = StreamParser()
    parser.receive_data(load("clerr"))
    assert parser.next_message() is None
    assert not parser.broken
    assert parser.awaiting_body == 9999 - 154  # the 154 body octets that did arrive


@pytest.mark.parametrize("name", ["ncl", "mcl01"])
def test_framing_errors_break_the_stream(name: str) -> None:
    parser = StreamParser()
    parser.receive_data(load(name))
    with pytest.raises(SipParseError) as info:
        parser.next_message()
    assert info.value.status == 400
    assert parser.broken
    with pytest.raises(SipParseError):
        parser.next_message()


# --- 3.2 / 3.3 / 3.4 ---------------------------------------------------------------------


def test_badbranch_parses_with_bare_magic_cookie() -> None:
    req = request("badbranch")
    assert req.via[0].branch == "z9hG4bK"


def test_unkscm_unknown_scheme_gets_416() -> None:
    exc = error("unkscm")
    assert exc.status == 416
    assert isinstance(exc.message, Request)
    assert exc.message.uri == AbsoluteURI("nobodyknowsthisscheme", "totallyopaquecontent")
    assert exc.message.call_id == "unkscm.nasdfasser0q239nwsdfasdkl34"


@pytest.mark.parametrize("name", ["unkscm", "novelsc"])
def test_unknown_schemes_parse_when_accepted(name: str) -> None:
    msg = parse_message(load(name), ParserConfig(supported_uri_schemes=None))
    assert isinstance(msg, Request)
    assert isinstance(msg.uri, AbsoluteURI)


def test_novelsc_atypical_scheme_gets_416() -> None:
    exc = error("novelsc")
    assert exc.status == 416
    assert isinstance(exc.message, Request)
    assert exc.message.uri == AbsoluteURI("soap.beep", "//192.0.2.103:3002")


def test_unksm2_unknown_schemes_in_header_fields() -> None:
    req = request("unksm2")
    assert req.to.uri == AbsoluteURI("isbn", "2983792873")
    assert req.from_.uri == AbsoluteURI("http", "//www.example.com")
    contact = req.contact
    assert contact != "*"
    assert contact[0].uri == AbsoluteURI("name", "John_Smith")


def test_bext01_require_gets_420_listing_the_unsupported() -> None:
    req = request("bext01")
    with pytest.raises(BadExtensionError) as info:
        check_require(req, ["timer", "replaces"])
    assert info.value.status == 420
    assert info.value.unsupported == ("nothingSupportsThis", "nothingSupportsThisEither")
    with pytest.raises(BadExtensionError) as info:
        check_require(req, [], header="Proxy-Require")
    assert info.value.unsupported == ("noProxiesSupportThis", "norDoAnyProxiesSupportThis")
    check_require(req, ["NOTHINGSUPPORTSTHIS", "nothingsupportsthiseither"])


def test_invut_unknown_content_type() -> None:
    req = request("invut")
    assert req.content_type is not None
    assert req.content_type.mime == "application/unknownformat"
    assert len(req.body) == 40


def test_regaut01_unknown_authorization_scheme_is_kept() -> None:
    req = request("regaut01")
    assert req.headers.get("Authorization") == "NoOneKnowsThisScheme opaque-data=here"
    assert b"Authorization: NoOneKnowsThisScheme opaque-data=here\r\n" in bytes(req)


def test_bcast_broadcast_via_parses() -> None:
    resp = parse("bcast")
    assert isinstance(resp, Response)
    assert resp.via[1].host == "255.255.255.255"


def test_zeromf_max_forwards_zero() -> None:
    assert request("zeromf").max_forwards == 0


def test_cparam01_contact_param_not_url_param() -> None:
    contact = request("cparam01").contact
    assert contact != "*"
    assert contact[0].params == Params({"unknownparam": None})
    assert sip(contact[0].uri).params == Params()
    assert sip(contact[0].uri).user == "+19725552222"


def test_cparam02_url_param() -> None:
    contact = request("cparam02").contact
    assert contact != "*"
    assert contact[0].params == Params()
    assert sip(contact[0].uri).params == Params({"unknownparam": None})


def test_regescrt_escaped_header_in_contact_uri() -> None:
    contact = request("regescrt").contact
    assert contact != "*"
    uri = sip(contact[0].uri)
    assert uri.headers == (("Route", "<sip:sip.example.com>"),)
    assert "?Route=%3Csip:sip.example.com%3E" in str(uri)


def test_sdp01_unacceptable_accept() -> None:
    req = request("sdp01")
    assert req.headers.get("Accept") == "text/nobodyKnowsThis"


def test_inv2543_rfc2543_syntax() -> None:
    req = request("inv2543")
    assert req.via[0].branch is None
    assert req.from_.tag is None
    assert req.max_forwards is None
    assert req.content_length is None
    assert req.body.startswith(b"v=0")  # body runs to the end of the datagram
    # Without <>, ";user=phone" belongs to the header field, not the URI (RFC 3261 s20.10).
    assert req.to.params["user"] == "phone"
    assert sip(req.from_.uri).params["user"] == "phone"


# --- every message ----------------------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_every_message_parses_or_fails_cleanly_and_round_trips(name: str) -> None:
    data = load(name)
    try:
        msg = parse_message(data, ParserConfig(supported_uri_schemes=None))
    except SipParseError as exc:
        assert exc.status in (400, 501, 505)
        assert exc.message is None or isinstance(exc.message, Message)
        return
    again = parse_message(bytes(msg), ParserConfig(supported_uri_schemes=None))
    assert again == msg
    assert bytes(again) == bytes(msg)


@pytest.mark.parametrize("name", NAMES)
def test_stream_parser_agrees_with_datagram_parser(name: str) -> None:
    data = load(name)
    config = ParserConfig(supported_uri_schemes=None)
    try:
        expected: Message | None = parse_message(data, config)
    except SipParseError:
        expected = None
    if expected is None or "Content-Length" not in expected.headers:
        return
    # Over a stream the message is framed by its (re-serialized) Content-Length.
    wire = b"\r\n\r\n" + bytes(expected) + bytes(expected)
    parser = StreamParser(config)
    got: list[Message] = []
    for i in range(0, len(wire), 7):
        parser.receive_data(wire[i : i + 7])
        while (msg := parser.next_message()) is not None:
            got.append(msg)
    assert got == [expected, expected]
    assert parser.buffered == 0
