"""Requests, responses, Headers and make_response (RFC 3261 s7, s8.2.6, s20)."""

from __future__ import annotations

import pytest

from focus.sip.errors import LocalProtocolError, SipParseError
from focus.sip.headers import Headers, NameAddr, Via
from focus.sip.message import Request, Response, make_response
from focus.sip.parser import parse_message
from focus.sip.uri import Params, SipURI

# RFC 3261 s24.2 F1, used as the typical INVITE.
INVITE = (
    b"INVITE sip:bob@biloxi.example.com SIP/2.0\r\n"
    b"Via: SIP/2.0/TCP client.atlanta.example.com:5060;branch=z9hG4bK74bf9\r\n"
    b"Max-Forwards: 70\r\n"
    b"From: Alice <sip:alice@atlanta.example.com>;tag=9fxced76sl\r\n"
    b"To: Bob <sip:bob@biloxi.example.com>\r\n"
    b"Call-ID: 3848276298220188511@atlanta.example.com\r\n"
    b"CSeq: 1 INVITE\r\n"
    b"Contact: <sip:alice@client.atlanta.example.com;transport=tcp>\r\n"
    b"Content-Type: application/sdp\r\n"
    b"Content-Length: 4\r\n"
    b"\r\n"
    b"v=0\n"
)


def test_headers_compact_forms_and_case_insensitive_names() -> None:
    h = Headers([("v", "SIP/2.0/UDP a.example.com"), ("i", "x@y"), ("l", "0"), ("o", "conference")])
    assert [name for name, _ in h] == ["Via", "Call-ID", "Content-Length", "Event"]
    assert h.get("CALL-id") == "x@y"
    assert h.get("i") == "x@y"
    assert "event" in h and "o" in h
    assert h.get("Subject") is None


def test_headers_add_first_set_remove_and_cache_invalidation() -> None:
    h = Headers([("Via", "SIP/2.0/UDP b.example.com;branch=z9hG4bK2")])
    assert h.via[0].host == "b.example.com"
    h.add("Via", "SIP/2.0/TCP a.example.com;branch=z9hG4bK1", first=True)
    assert [v.host for v in h.via] == ["a.example.com", "b.example.com"]
    h.set("Via", "SIP/2.0/UDP c.example.com;branch=z9hG4bK3")
    assert [v.host for v in h.via] == ["c.example.com"]
    assert h.remove("via") == 1
    assert h.via == []


def test_replace_top_via_inside_comma_list() -> None:
    h = Headers([("Via", "SIP/2.0/UDP a.example.com;branch=z9hG4bK1, SIP/2.0/UDP b.example.com")])
    top = h.via[0].with_params(received="192.0.2.1", rport="5070")
    h.replace_top_via(top)
    assert h.via[0].received == "192.0.2.1"
    assert h.via[0].rport == 5070
    assert h.via[1].host == "b.example.com"


def test_typed_accessors_of_invite() -> None:
    req = parse_message(INVITE)
    assert isinstance(req, Request)
    assert req.method == "INVITE"
    assert req.uri == SipURI("biloxi.example.com", user="bob")
    (via,) = req.via
    assert via == Via("TCP", "client.atlanta.example.com", 5060, Params({"branch": "z9hG4bK74bf9"}))
    assert via.branch == "z9hG4bK74bf9"
    assert req.from_.display_name == "Alice" and req.from_.tag == "9fxced76sl"
    assert req.to.tag is None
    assert req.call_id == "3848276298220188511@atlanta.example.com"
    assert (req.cseq.number, req.cseq.method) == (1, "INVITE")
    contact = req.contact
    assert contact != "*"
    assert isinstance(contact[0].uri, SipURI) and contact[0].uri.transport == "tcp"
    assert req.max_forwards == 70
    assert req.content_type is not None and req.content_type.mime == "application/sdp"
    assert req.content_length == 4
    assert req.body == b"v=0\n"


def test_serialize_rewrites_content_length_and_round_trips() -> None:
    req = parse_message(INVITE)
    req.body = b"v=0\r\no=x\r\n"
    wire = bytes(req)
    assert b"\r\nContent-Length: 10\r\n" in wire
    again = parse_message(wire)
    assert again == req
    assert again.to_bytes() == wire


def test_serialize_adds_missing_content_length() -> None:
    resp = Response(200, headers=[("Call-ID", "a@b")])
    assert bytes(resp) == b"SIP/2.0 200 OK\r\nCall-ID: a@b\r\nContent-Length: 0\r\n\r\n"


def test_header_value_with_newline_is_our_bug() -> None:
    resp = Response(200, headers=[("Subject", "a\r\nInjected: yes")])
    with pytest.raises(LocalProtocolError):
        resp.to_bytes()


def test_reason_phrase_with_newline_is_our_bug() -> None:
    with pytest.raises(LocalProtocolError):
        Response(200, "OK\r\nX-Injected: 1").to_bytes()


def test_header_names_must_be_tokens() -> None:
    with pytest.raises(LocalProtocolError):
        Headers([("Bad Name", "x")])
    with pytest.raises(LocalProtocolError):
        Headers().add("X:Y", "x")


def test_method_must_be_a_token() -> None:
    with pytest.raises(LocalProtocolError):
        Request("NOT A TOKEN", "sip:a@b").to_bytes()


def test_response_status_must_be_sip_status() -> None:
    with pytest.raises(LocalProtocolError):
        Response(99)


def test_make_response_copies_the_transaction_headers() -> None:
    req = parse_message(INVITE)
    assert isinstance(req, Request)
    req.headers.add("Record-Route", "<sip:p1.example.com;lr>")
    resp = make_response(req, 180, to_tag="8321234356")
    assert (resp.status, resp.reason) == (180, "Ringing")
    assert resp.headers.get_all("Via") == req.headers.get_all("Via")
    assert resp.from_ == req.from_
    assert resp.to.tag == "8321234356"
    assert resp.to.uri == req.to.uri
    assert resp.call_id == req.call_id
    assert resp.cseq == req.cseq
    assert [r.uri for r in resp.record_route] == [r.uri for r in req.record_route]
    assert resp.body == b""
    # 100 Trying gets no tag, and no Record-Route outside 101-299.
    trying = make_response(req, 100, to_tag="x")
    assert trying.to.tag is None
    assert make_response(req, 486).headers.get("Record-Route") is None


def test_make_response_keeps_existing_to_tag() -> None:
    req = parse_message(
        INVITE.replace(b"To: Bob <sip:bob@biloxi.example.com>", b"t: <sip:b@c>;tag=1")
    )
    assert isinstance(req, Request)
    resp = make_response(req, 200, to_tag="other")
    assert resp.to.tag == "1"


def test_make_response_for_a_request_that_failed_validation() -> None:
    data = INVITE.replace(b"CSeq: 1 INVITE", b"CSeq: 1 BYE")
    with pytest.raises(SipParseError) as info:
        parse_message(data)
    assert info.value.status == 400
    assert "CSeq" in info.value.reason
    bad = info.value.message
    assert isinstance(bad, Request)
    resp = make_response(bad, info.value.status, info.value.reason)
    assert bytes(resp).startswith(b"SIP/2.0 400 Bad Request - CSeq method does not match")
    assert resp.call_id == "3848276298220188511@atlanta.example.com"


def test_name_addr_serialization_quotes_display_name() -> None:
    na = NameAddr(SipURI("example.com", user="a"), 'The "A" Team', Params({"tag": "x y"}))
    assert str(na) == '"The \\"A\\" Team" <sip:a@example.com>;tag="x y"'


def test_contact_star() -> None:
    h = Headers([("Contact", "*")])
    assert h.contact == "*"
    h = Headers([("Contact", "*, <sip:a@b>")])
    with pytest.raises(SipParseError):
        h.contact  # noqa: B018


def test_single_value_header_repeated_is_an_error() -> None:
    h = Headers([("Call-ID", "a@b"), ("i", "c@d")])
    with pytest.raises(SipParseError) as info:
        h.call_id  # noqa: B018
    assert info.value.reason == "Bad Request - Multiple Call-ID header fields"


def test_event_subscription_state_refer_to_expires() -> None:
    h = Headers(
        [
            ("o", "conference;id=7"),
            ("Subscription-State", "active;expires=3600"),
            ("r", "<sip:carol@example.com;method=BYE>"),
            ("Expires", "99999999999"),
        ]
    )
    assert h.event is not None and (h.event.package, h.event.id) == ("conference", "7")
    assert h.subscription_state is not None
    assert (h.subscription_state.state, h.subscription_state.expires) == ("active", 3600)
    assert h.refer_to is not None and isinstance(h.refer_to.uri, SipURI)
    assert h.refer_to.uri.params["method"] == "BYE"
    assert h.expires == 2**32 - 1


def test_tokens() -> None:
    h = Headers([("k", "timer, 100rel"), ("Supported", "replaces")])
    assert h.tokens("Supported") == ["timer", "100rel", "replaces"]


def test_100_trying_echoes_timestamp() -> None:
    req = parse_message(INVITE)
    assert isinstance(req, Request)
    req.headers.add("Timestamp", "54.2")
    assert make_response(req, 100).headers.get("Timestamp") == "54.2"
    assert make_response(req, 180).headers.get("Timestamp") is None


def test_unencodable_text_is_our_bug() -> None:
    with pytest.raises(LocalProtocolError):
        Response(200, headers=[("Subject", "\ud800")]).to_bytes()


def test_via_with_bare_ipv6_host() -> None:
    via = Via("UDP", "::1", 5060)
    assert via.host == "[::1]"
    assert str(via) == "SIP/2.0/UDP [::1]:5060"
