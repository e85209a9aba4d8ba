"""The msc-ivr codec against RFC 6231's examples and against bad input."""

from __future__ import annotations

from pathlib import Path

import pytest

from mediactrl.ivr import IvrDecodeError, decode, encode
from mediactrl.ivr.model import (
    Dialog,
    DialogExit,
    DialogStart,
    DialogTerminate,
    DtmfMatchMode,
    DtmfNotify,
    DtmfSub,
    Event,
    IvrMessage,
    Response,
    Subscribe,
    UnsupportedRequest,
)

VECTORS = Path(__file__).parent / "vectors"


def vector(name: str) -> bytes:
    return (VECTORS / name).read_bytes()


def test_dialogstart_with_dtmf_subscription() -> None:
    message = decode(vector("dialogstart-dtmfsub-s4.2.2.xml"))
    assert message == DialogStart(
        connectionid="connection1",
        dialog=Dialog(("prompt", "collect")),
        subscribe=Subscribe(DtmfSub(DtmfMatchMode.ALL)),
    )


def test_dialogstart_with_control_subscription() -> None:
    message = decode(vector("dialogstart-control-s4.2.2.1.1.xml"))
    assert isinstance(message, DialogStart)
    assert message.dialogid == "d3"
    assert message.dialog == Dialog(("prompt", "control"))
    assert message.subscribe == Subscribe(DtmfSub(DtmfMatchMode.CONTROL))


def test_dialogstart_with_streams() -> None:
    message = decode(vector("dialogstart-streams-s4.2.2.2.xml"))
    assert isinstance(message, DialogStart)
    assert message.streams == 4
    assert message.subscribe is None


@pytest.mark.parametrize(
    ("name", "dtmf"), [("dtmfnotify-s4.2.2.1.1.xml", "2"), ("dtmfnotify-s4.2.5.2.xml", "3123")]
)
def test_dtmfnotify(name: str, dtmf: str) -> None:
    assert decode(vector(name)) == Event(
        "d3", DtmfNotify(dtmf, "2008-05-12T12:13:14Z", DtmfMatchMode.COLLECT)
    )


def test_dialogexit_with_report() -> None:
    assert decode(vector("dialogexit-s4.2.xml")) == Event(
        "d1", DialogExit(1, "successful completion of the dialog")
    )


def test_dialogterminate_and_responses() -> None:
    assert decode(vector("dialogterminate-s4.2.3.xml")) == DialogTerminate("d4", immediate=True)
    assert decode(vector("response-s4.2.3.xml")) == Response(200, "d4")
    assert decode(vector("response-421-s4.2.4.xml")) == Response(
        421, "d5", "Unsupported dialog language: application/voicexml+xml"
    )


def test_dialogterminate_without_dialogid_is_400_with_empty_dialogid() -> None:
    with pytest.raises(IvrDecodeError) as caught:
        decode(vector("dialogterminate-no-dialogid-s4.2.4.xml"))
    assert (caught.value.status, caught.value.dialogid) == (400, "")
    assert "dialogid" in caught.value.reason


@pytest.mark.parametrize(
    "message",
    [
        DialogStart(
            connectionid="a:b",
            dialogid="dtmf-a:b",
            dialog=Dialog(),
            subscribe=Subscribe(DtmfSub()),
        ),
        DialogStart(conferenceid="c1", src="http://example.com/d.vxml"),
        DialogTerminate("d1"),
        DialogTerminate("d1", immediate=True),
        UnsupportedRequest("audit"),
        Response(407, "d9", "connectionid does not exist", connectionid="x:y"),
        Event("d1", DtmfNotify("#", "2026-01-01T00:00:00Z")),
        Event("d1", DtmfNotify("12", "2026-01-01T00:00:00Z", DtmfMatchMode.CONTROL)),
        Event("d1", DialogExit(2, "connection terminated")),
    ],
)
def test_round_trip(message: IvrMessage) -> None:
    assert decode(encode(message)) == message


def test_encoded_dialogstart_has_the_rfc_shape() -> None:
    body = encode(
        DialogStart(
            connectionid="a:b", dialogid="d", dialog=Dialog(), subscribe=Subscribe(DtmfSub())
        )
    )
    assert body == (
        b'<mscivr xmlns="urn:ietf:params:xml:ns:msc-ivr" version="1.0">'
        b'<dialogstart dialogid="d" connectionid="a:b"><dialog/>'
        b"<subscribe><dtmfsub/></subscribe></dialogstart></mscivr>"
    )


NS = 'xmlns="urn:ietf:params:xml:ns:msc-ivr"'


@pytest.mark.parametrize(
    ("body", "status", "fragment"),
    [
        (b"<mscivr", 400, "well-formed"),
        (b'<!DOCTYPE x [<!ENTITY a "b">]><mscivr/>', 400, "DOCTYPE"),
        (b'<mscmixer version="1.0" xmlns="urn:ietf:params:xml:ns:msc-mixer"/>', 400, "root"),
        (
            f'<mscivr version="2.0" {NS}><dialogterminate dialogid="x"/></mscivr>'.encode(),
            400,
            "version",
        ),
        (f'<mscivr version="1.0" {NS}/>'.encode(), 400, "exactly one"),
        (
            f'<mscivr version="1.0" {NS}><dialogstart connectionid="a:b" conferenceid="c">'
            f"<dialog/></dialogstart></mscivr>".encode(),
            400,
            "connectionid",
        ),
        (
            f'<mscivr version="1.0" {NS}><dialogstart dialogid="q" connectionid="a:b"/>'
            f"</mscivr>".encode(),
            400,
            "src",
        ),
        (
            f'<mscivr version="1.0" {NS}><dialogstart connectionid="a:b"><dialog/>'
            f'<subscribe><dtmfsub matchmode="some"/></subscribe></dialogstart></mscivr>'.encode(),
            400,
            "matchmode",
        ),
        (
            f'<mscivr version="1.0" {NS}><dialogstart connectionid="a:b"><dialog/>'
            f'<subscribe><x:sub xmlns:x="urn:example"/></subscribe>'
            f"</dialogstart></mscivr>".encode(),
            431,
            "unsupported subscription",
        ),
        (
            f'<mscivr version="1.0" {NS}><dialogstart connectionid="a:b"><subscribe/><dialog/>'
            f"</dialogstart></mscivr>".encode(),
            400,
            "out of place",
        ),
        (
            f'<mscivr version="1.0" {NS}><event dialogid="d"><dtmfnotify dtmf="x" '
            f'timestamp="t"/></event></mscivr>'.encode(),
            400,
            "DTMF string",
        ),
        (
            f'<mscivr version="1.0" {NS}><response status="2000" dialogid=""/></mscivr>'.encode(),
            400,
            "status",
        ),
        (b"<a>" * 40 + b"</a>" * 40, 400, "nested too deeply"),
        (b" " * 70000, 400, "too large"),
    ],
)
def test_bad_bodies_are_refused_with_a_status(body: bytes, status: int, fragment: str) -> None:
    with pytest.raises(IvrDecodeError) as caught:
        decode(body)
    assert caught.value.status == status
    assert fragment in caught.value.reason


def test_refusal_carries_the_requests_dialogid() -> None:
    body = (
        f'<mscivr version="1.0" {NS}><dialogstart dialogid="mine" connectionid="a:b"'
        f' src="http://x/y"><dialog/></dialogstart></mscivr>'
    ).encode()
    with pytest.raises(IvrDecodeError) as caught:
        decode(body)
    assert caught.value.dialogid == "mine"
