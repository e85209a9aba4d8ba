"""RFC 7339 overload control parameters (focus.sip.oc), on the RFC's s6 example Vias
(tests/vectors/rfc7339) and between two UA cores."""

from __future__ import annotations

import random

import pytest

from focus.sip.flow import TransportKind
from focus.sip.headers import Via, parse_via
from focus.sip.message import Response
from focus.sip.oc import OcClient, offer, offers_loss, server_feedback
from focus.sip.overload import OverloadConfig
from focus.sip.uacore import CallFailed, IncomingCall, UAConfig, UACore
from tests.focus.sip.test_uacore import B_ADDR, METHODS, OFFER, Net, b_uri
from tests.paths import ROOT

VECTORS = ROOT / "tests" / "vectors" / "rfc7339"
SERVER = ("192.0.2.5", 5060)


def vector(name: str) -> Via:
    (via,) = parse_via((VECTORS / name).read_text().strip())
    return via


def test_the_rfc_request_offers_loss_and_a_plain_via_does_not() -> None:
    assert offers_loss(vector("s6-request-via.txt"))
    assert not offers_loss(parse_via("SIP/2.0/UDP h;branch=z9hG4bK1")[0])
    assert not offers_loss(parse_via('SIP/2.0/UDP h;branch=z9hG4bK1;oc;oc-algo="A"')[0])
    assert offers_loss(parse_via("SIP/2.0/UDP h;branch=z9hG4bK1;oc")[0])  # loss by default


def test_our_offer_has_oc_without_value_and_loss() -> None:
    via = offer(parse_via("SIP/2.0/UDP h;branch=z9hG4bK1")[0])
    assert "oc" in via.params and via.params["oc"] is None
    assert via.params["oc-algo"] == "loss"
    assert offers_loss(parse_via(str(via))[0])


def test_server_feedback_reads_back_as_the_rfc_example_fields() -> None:
    request = vector("s6-request-via.txt")
    calm = server_feedback(request, 0, 1282321892.439, 500).params
    assert (calm["oc"], calm["oc-algo"], calm["oc-validity"]) == ("0", "loss", "0")
    loaded = parse_via(str(server_feedback(request, 20, 1282321615.782, 500)))[0].params
    expected = vector("s6-180-overload-via.txt").params
    for name in ("oc", "oc-algo", "oc-validity", "oc-seq"):
        assert loaded[name] == expected[name], name
    assert loaded["branch"] == request.params["branch"]


def test_client_follows_the_rfc_example_sequence() -> None:
    client = OcClient(rng=random.Random(3))
    client.receive(SERVER, vector("s6-100-trying-via.txt"), 0.0)
    assert client.state(SERVER, 0.0) is None  # supported, not in effect
    client.receive(SERVER, vector("s6-180-overload-via.txt"), 1.0)
    state = client.state(SERVER, 1.0)
    assert state is not None and state.loss == 20
    assert client.state(SERVER, 1.6) is None  # 500 ms validity ran out
    client.receive(SERVER, vector("s6-180-overload-via.txt"), 2.0)
    client.receive(SERVER, vector("s6-183-end-via.txt"), 2.1)  # higher seq: control ends
    assert client.state(SERVER, 2.2) is None


def test_a_tardy_response_does_not_undo_newer_feedback() -> None:
    client = OcClient()
    client.receive(SERVER, vector("s6-183-end-via.txt"), 0.0)
    client.receive(SERVER, vector("s6-180-overload-via.txt"), 0.1)  # older seq: tardy
    assert client.state(SERVER, 0.2) is None
    newer = server_feedback(vector("s6-request-via.txt"), 50, 1282321999.0, 5000)
    client.receive(SERVER, newer, 0.3)
    client.receive(SERVER, vector("s6-180-overload-via.txt"), 0.4)  # older seq: ignored
    state = client.state(SERVER, 0.5)
    assert state is not None and state.loss == 50


@pytest.mark.parametrize("loss", [0, 20, 50, 100])
def test_admission_follows_the_loss_percentage(loss: int) -> None:
    client = OcClient(rng=random.Random(11))
    client.receive(SERVER, server_feedback(vector("s6-request-via.txt"), loss, 1.0, 60_000), 0.0)
    admitted = sum(client.admit(SERVER, 1.0) for _ in range(2000))
    assert abs(admitted / 2000 - (100 - loss) / 100) < 0.05


@pytest.mark.parametrize("text", ["oc=abc", "oc=-5", "oc=nan;oc-seq=x", "oc=10;oc-validity=z"])
def test_garbage_feedback_never_raises(text: str) -> None:
    client = OcClient()
    client.receive(SERVER, parse_via(f"SIP/2.0/UDP h;branch=z9hG4bK1;{text}")[0], 0.0)
    assert client.admit(SERVER, 0.0) in (True, False)


def test_between_two_cores_overload_feedback_sheds_new_invites() -> None:
    net = Net()
    config = UAConfig(user="bob", methods=METHODS, overload=OverloadConfig())
    net.b = UACore(config, {TransportKind.UDP: B_ADDR})
    assert net.b.gate is not None
    net.b.gate.busy = lambda: "busy"
    net.a.invite(b_uri(), OFFER, net.now)
    net.pump()
    (refused,) = net.sent("b", "503/INVITE")
    assert isinstance(refused, Response)
    assert refused.via[0].params["oc"] == "100"  # every INVITE refused: loss 100 %
    assert refused.via[0].params["oc-algo"] == "loss"
    assert net.take("a", CallFailed)
    # a now sheds its own new INVITEs to b while the feedback is valid, without sending.
    before = len(net.sent("a", "INVITE"))
    net.a.invite(b_uri(), OFFER, net.now + 0.1)
    net.pump()
    assert len(net.sent("a", "INVITE")) == before
    (shed,) = net.take("a", CallFailed)
    assert isinstance(shed, CallFailed) and shed.status == 503
    # Once it expires (oc-validity 500 ms), a calls again and b, no longer busy, answers.
    net.b.gate.busy = lambda: None
    net.now += 1.0
    net.a.invite(b_uri(), OFFER, net.now)
    net.pump()
    assert net.take("b", IncomingCall)
