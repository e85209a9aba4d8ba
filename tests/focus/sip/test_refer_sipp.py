"""REFER with real peers: sipp calls us and REFERs us to a second sipp (RFC 3515).

Our side is built only from the sans-IO modules -- TransactionLayer, Dialog,
receive_refer -- on a real UDP socket (test_transaction_wire.UdpLoop).  The referrer is
sipp running the project's checking scenario sip_profiles/sipp/uac_refer.xml (202, a
"100 Trying" NOTIFY then a terminated "200 OK" NOTIFY, both in the call's dialog);
the target is ``sipp -sn uas``, which we call, ACK and hang up on.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from focus.sip.dialog import Dialog, DialogTable
from focus.sip.events import Event, RequestReceived, ResponseReceived
from focus.sip.headers import parse_name_addr
from focus.sip.message import Request, make_response
from focus.sip.refer import ReferConfig, Referral, receive_refer
from focus.sip.transaction import new_branch, new_tag
from tests import sipp as peer
from tests.focus.sip.conftest import free_port
from tests.focus.sip.test_transaction_wire import UdpLoop
from tests.paths import SIPP_SCENARIOS

pytestmark = [
    pytest.mark.interop,
    pytest.mark.skipif(shutil.which("sipp") is None, reason="sipp is not installed"),
]

SCENARIO = SIPP_SCENARIOS / "uac_refer.xml"
SDP = (
    b"v=0\r\no=focus 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
    b"m=audio 40000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n"
)


class Referee:
    """Answers calls, accepts REFERs and carries them out (INVITE, ACK, BYE)."""

    def __init__(self) -> None:
        self.loop = UdpLoop(self.on_event)
        self.contact = parse_name_addr(f"<sip:focus@{self.loop.sent_by}>")
        self.config = ReferConfig(sent_by=self.loop.sent_by, contact=self.contact)
        self.dialogs = DialogTable()
        self.outgoing: dict[str, tuple[Request, Referral]] = {}  # branch -> our INVITE
        self.log: list[str] = []

    def send(self, request: Request, dialog: Dialog, now: float) -> str:
        return self.loop.layer.send_request(
            request, self.loop.flow_to(dialog.next_hop()), now
        ).branch

    def on_event(self, event: Event, now: float) -> None:
        layer = self.loop.layer
        if isinstance(event, RequestReceived):
            request = event.request
            self.log.append(request.method)
            if request.method == "ACK" or event.transaction is None:
                return
            if request.method == "INVITE" and request.to.tag is None:
                ok = make_response(request, 200, to_tag=new_tag())
                ok.headers.add("Contact", str(self.contact))
                ok.headers.add("Content-Type", "application/sdp")
                ok.body = SDP
                self.dialogs.add(Dialog.from_uas(request, ok, self.contact))
                layer.send_response(ok, now)
                return
            found = self.dialogs.dispatch(request)
            if not isinstance(found, Dialog):
                assert found is not None
                layer.send_response(found, now)
                return
            if request.method == "REFER":
                result = receive_refer(request, now, config=self.config, dialog=found)
                layer.send_response(result.response, now)
                if result.notify is not None:
                    self.send(result.notify, found, now)
                if result.referral is not None:
                    self.dial(result.referral, now)
                return
            error = found.receive_request(request)
            layer.send_response(error or found.create_response(request, 200), now)
            if found.terminated:
                self.dialogs.remove(found)
        elif isinstance(event, ResponseReceived):
            self.log.append(f"{event.response.status} {event.request.method}")
            placed = self.outgoing.get(event.transaction.branch)
            if placed is None or event.response.status < 200:
                return
            invite, referral = placed
            dialog = referral.subscription.dialog if referral.subscription else None
            status = event.response.status
            if status < 300:
                call = Dialog.from_uac(invite, event.response, self.contact)
                ack = call.create_ack(invite.cseq.number, sent_by=self.loop.sent_by)
                layer.send_ack(ack, self.loop.flow_to(call.next_hop()))
                self.send(call.create_request("BYE", sent_by=self.loop.sent_by), call, now)
            notify = referral.progress(now, status, event.response.reason)
            if notify is not None and dialog is not None:
                self.send(notify, dialog, now)

    def dial(self, referral: Referral, now: float) -> None:
        """Place the referred INVITE (RFC 3515 s2.4.2: the referee sends it)."""
        target = referral.refer_to.uri
        invite = Request("INVITE", target)
        h = invite.headers
        h.add("Via", f"SIP/2.0/UDP {self.loop.sent_by};branch={new_branch()};rport")
        h.add("Max-Forwards", "70")
        h.add("From", f"<sip:focus@{self.loop.sent_by}>;tag={new_tag()}")
        h.add("To", f"<{target}>")
        h.add("Call-ID", new_tag() + new_tag() + "@127.0.0.1")
        h.add("CSeq", "1 INVITE")
        h.add("Contact", str(self.contact))
        h.add("Content-Type", "application/sdp")
        invite.body = SDP
        key = self.loop.layer.send_request(invite, self.loop.flow_to(target), now)
        self.outgoing[key.branch] = (invite, referral)


def test_sipp_refers_us_and_we_transfer_to_another_sipp(tmp_path: Path) -> None:
    referee = Referee()
    target_port = free_port()
    target = peer.start("-sn", "uas", "-m", "1", "-p", str(target_port), cwd=tmp_path)
    referrer = peer.start(
        f"127.0.0.1:{referee.loop.port}",
        "-sf",
        str(SCENARIO),
        "-set",
        "referto",
        f"sip:target@127.0.0.1:{target_port}",
        "-m",
        "1",
        "-p",
        str(free_port()),
        cwd=tmp_path,
    )
    try:
        referee.loop.serve(lambda: referrer.poll() is not None and target.poll() is not None)
        out_referrer, _ = referrer.communicate(timeout=30)
        out_target, _ = target.communicate(timeout=30)
    finally:
        peer.stop(referrer, target)
        referee.loop.close()
    assert referrer.returncode == 0, out_referrer[-3000:]
    assert target.returncode == 0, out_target[-3000:]
    # the referred call was placed, answered, and hung up by us
    assert "200 INVITE" in referee.log and "200 BYE" in referee.log
    assert referee.log.count("NOTIFY") == 0  # we send NOTIFYs, we never receive one
    assert [m for m in referee.log if m.endswith("NOTIFY")] == ["200 NOTIFY", "200 NOTIFY"]
