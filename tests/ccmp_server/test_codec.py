"""The CCMP codec against every published example, both namespaces, and bad input."""

from __future__ import annotations

from pathlib import Path

import pytest
from lxml import etree

from ccmp_server.codec import (
    CcmpDecodeError,
    decode_request,
    decode_response,
    encode_request,
    encode_response,
)
from ccmp_server.messages import (
    CCMP_NS,
    CCMP_NS_DRAFT,
    INFO_NS,
    CcmpRequest,
    CcmpResponse,
    MessageCapability,
    MessageType,
    Operation,
    Options,
    ResponseCode,
    Subject,
    UriEntry,
    parse_response_code,
)
from tests.ccmp_server.vectors import MALFORMED, load, vector_files, vector_id


@pytest.mark.parametrize("path", vector_files("request"), ids=vector_id)
def test_every_published_request_decodes_and_round_trips(path: Path) -> None:
    req = decode_request(path.read_bytes())
    assert req.namespace in (CCMP_NS, CCMP_NS_DRAFT)
    again = decode_request(encode_request(req))
    assert again.message_type == req.message_type
    assert again.namespace == req.namespace
    assert again.conf_user_id == req.conf_user_id
    assert again.conf_obj_id == req.conf_obj_id
    assert again.operation == req.operation
    assert again.extension_name == req.extension_name
    assert (again.info is None) == (req.info is None)
    if req.info is not None and again.info is not None:
        assert etree.tostring(again.info, method="c14n") == etree.tostring(req.info, method="c14n")


@pytest.mark.parametrize("path", vector_files("response"), ids=vector_id)
def test_every_published_response_decodes_and_round_trips(path: Path) -> None:
    resp = decode_response(path.read_bytes())
    again = decode_response(encode_response(resp))
    assert again.code == resp.code
    assert again.message_type == resp.message_type
    assert again.version == resp.version
    assert again.conf_obj_id == resp.conf_obj_id
    assert again.uris == resp.uris
    assert again.options == resp.options


@pytest.mark.parametrize("name", sorted(MALFORMED))
def test_malformed_published_messages_are_refused_clearly(name: str) -> None:
    decode = decode_request if "request" in name else decode_response
    with pytest.raises(CcmpDecodeError, match="malformed XML"):
        decode(load(name))


def test_rfc6503_blueprints_request_fields() -> None:
    req = decode_request(load("rfc6503/6.1-01-request.xml"))
    assert req.message_type is MessageType.BLUEPRINTS
    assert req.conf_user_id == "xcon-userid:alice@example.com"
    assert req.conf_obj_id is None and req.operation is None


def test_rfc6503_third_party_user_create_fields() -> None:
    req = decode_request(load("rfc6503/6.7-01-request.xml"))
    assert req.message_type is MessageType.USER
    assert req.operation is Operation.CREATE
    assert req.info is not None
    assert req.info.get("entity") == "xcon-userid:AUTO_GENERATE_1@example.com"


def test_rfc6503_blueprints_response_uri_list() -> None:
    resp = decode_response(load("rfc6503/6.1-02-response.xml"))
    assert resp.code is ResponseCode.SUCCESS
    assert resp.uris is not None
    assert [u.uri for u in resp.uris][:2] == [
        "xcon:AudioRoom@example.com",
        "xcon:VideoRoom@example.com",
    ]
    assert resp.uris[0].display_text == "AudioRoom"


def test_rfc6503_options_response() -> None:
    resp = decode_response(load("rfc6503/6.8-02-response.xml"))
    assert resp.options is not None
    names = [m.name for m in resp.options.standard]
    assert "blueprintRequest" in names and "sidebarByValRequest" not in names
    assert resp.options.standard[1].operations == (Operation.RETRIEVE,)
    assert resp.options.extended[0].name == "confSummaryRequest"


def test_rfc6504_password_required_response() -> None:
    resp = decode_response(load("rfc6504/6.5-02-response.xml"))
    assert resp.code is ResponseCode.CONFERENCE_PASSWORD_REQUIRED
    assert resp.namespace == CCMP_NS_DRAFT


def test_seed_textual_codes_and_xsi_only_request() -> None:
    # Seed s5.1: no specialized element, no confUserID; xsi:type names the pair.
    req = decode_request(load("seed-draft-xcon-examples-00/5.1-01-request.xml"))
    assert req.message_type is MessageType.CONF
    assert req.operation is Operation.CREATE
    assert req.conf_user_id is None
    resp = decode_response(load("seed-draft-xcon-examples-00/5.1-02-response.repaired.xml"))
    assert resp.code is ResponseCode.SUCCESS
    assert resp.conf_obj_id == "xcon:8977794@example.com"


@pytest.mark.parametrize("text", ["success", "Success", "authenticationRequired", "404"])
def test_textual_and_numeric_codes(text: str) -> None:
    assert parse_response_code(text) in ResponseCode


def test_unknown_code_is_an_error() -> None:
    with pytest.raises(ValueError, match="unknown CCMP response code"):
        parse_response_code("splendid")


@pytest.mark.parametrize("ns", [CCMP_NS, CCMP_NS_DRAFT])
def test_response_uses_the_given_namespace_and_numeric_code(ns: str) -> None:
    data = encode_response(
        CcmpResponse(
            message_type=MessageType.CONFS,
            code=ResponseCode.SUCCESS,
            conf_user_id="xcon-userid:a@example.com",
            namespace=ns,
            uris=(UriEntry("xcon:1@example.com", "one"),),
        )
    )
    root = etree.fromstring(data)
    assert root.tag == f"{{{ns}}}ccmpResponse"
    assert root.find("ccmpResponse/response-code").text == "200"  # type: ignore[union-attr]
    assert root.find(f"ccmpResponse/{{{ns}}}confsResponse/confsInfo/{{{INFO_NS}}}entry") is not None
    assert decode_response(data).uris == (UriEntry("xcon:1@example.com", "one"),)


def test_request_round_trip_with_subject_password_and_filter() -> None:
    req = CcmpRequest(
        message_type=MessageType.CONFS,
        subject=Subject("alice", " s3cret "),
        conf_user_id="xcon-userid:alice@example.com",
        conference_password="pw",
        xpath_filter="/conference-info[conference-description/display-text='x']",
    )
    assert decode_request(encode_request(req)) == req


def test_options_round_trip() -> None:
    options = Options(
        standard=(MessageCapability("confRequest", (Operation.RETRIEVE, Operation.CREATE)),),
        extended=(MessageCapability("confSummaryRequest", (), "urn:x", "summary"),),
    )
    resp = CcmpResponse(MessageType.OPTIONS, ResponseCode.SUCCESS, "u", options=options)
    assert decode_response(encode_response(resp)).options == options


def _request(inner: str, ns: str = CCMP_NS) -> bytes:
    return (
        f'<ccmp:ccmpRequest xmlns:ccmp="{ns}" '
        'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">'
        f"<ccmpRequest>{inner}</ccmpRequest></ccmp:ccmpRequest>"
    ).encode()


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"<notccmp/>", "root element must be ccmpRequest"),
        (b"not xml at all", "malformed XML"),
        (_request("<confUserID>a</confUserID>"), "no specialized request message"),
        (_request("<operation>frobnicate</operation><ccmp:confRequest/>"), "unknown operation"),
        (_request("<confUserID>a</confUserID><confUserID>b</confUserID>"), "duplicate"),
        (_request("<ccmp:confRequest/><ccmp:userRequest/>"), "more than one"),
        (_request("<bogus/><ccmp:confRequest/>"), "unexpected element <bogus>"),
        (_request("<ccmp:confRequest><userInfo/></ccmp:confRequest>"), "unexpected <userInfo>"),
        (_request("<ccmp:extendedRequest/>"), "requires <extensionName>"),
        (
            f'<ccmp:ccmpRequest xmlns:ccmp="{CCMP_NS}" '
            'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">'
            '<ccmpRequest xsi:type="ccmp:nonsense"/></ccmp:ccmpRequest>'.encode(),
            "unknown request type",
        ),
        (
            f'<ccmp:ccmpRequest xmlns:ccmp="{CCMP_NS}" '
            'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">'
            '<ccmpRequest xsi:type="ccmp:ccmp-user-request-message-type">'
            "<ccmp:confRequest/></ccmpRequest></ccmp:ccmpRequest>".encode(),
            "does not match",
        ),
        (b'<ccmp:ccmpRequest xmlns:ccmp="urn:other"/>', "root element"),
        (f'<ccmp:ccmpRequest xmlns:ccmp="{CCMP_NS}"/>'.encode(), "exactly one"),
    ],
)
def test_bad_requests_are_400_with_a_reason(body: bytes, message: str) -> None:
    with pytest.raises(CcmpDecodeError, match=message) as info:
        decode_request(body)
    assert info.value.code is ResponseCode.BAD_REQUEST


def test_decode_error_remembers_what_was_understood() -> None:
    body = _request(
        "<confUserID>u</confUserID><confObjID>c</confObjID>"
        "<ccmp:userRequest><confInfo/></ccmp:userRequest>",
        CCMP_NS_DRAFT,
    )
    with pytest.raises(CcmpDecodeError) as info:
        decode_request(body)
    err = info.value
    assert (err.namespace, err.message_type, err.conf_user_id, err.conf_obj_id) == (
        CCMP_NS_DRAFT,
        MessageType.USER,
        "u",
        "c",
    )


def test_extension_elements_in_other_namespaces_are_ignored() -> None:
    body = _request('<x:hint xmlns:x="urn:example"/><confUserID>u</confUserID><ccmp:confsRequest/>')
    assert decode_request(body).message_type is MessageType.CONFS


def test_rfc6504_conference_password_inside_subject_is_understood() -> None:
    req = decode_request(load("rfc6504/6.2-01-request.xml"))
    assert req.conference_password == "13011983"
    assert req.subject == Subject("Alice83", None)
