"""sipp's built-in UAC, losing 10 % of its packets, against a minimal UAS made of our
TransactionLayer and Dialog on a real UDP socket: only retransmissions on both sides
(Timers A/E at sipp, 2xx retransmission and response re-sends at ours) can finish the calls.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from focus.sip.dialog import Dialog, DialogTable
from focus.sip.events import AckNotReceived, Event, RequestReceived
from focus.sip.headers import parse_name_addr
from focus.sip.message import make_response
from focus.sip.transaction import new_tag
from tests import sipp as peer
from tests.focus.sip.conftest import free_port
from tests.focus.sip.test_transaction_wire import UdpLoop

pytestmark = [
    pytest.mark.interop,
    pytest.mark.skipif(shutil.which("sipp") is None, reason="sipp is not installed"),
]

SDP = (
    b"v=0\r\no=uas 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
    b"m=audio 40000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n"
)


class Uas:
    def __init__(self) -> None:
        self.loop = UdpLoop(self.on_event)
        self.contact = parse_name_addr(f"<sip:uas@{self.loop.sent_by}>")
        self.dialogs = DialogTable()
        self.invites = 0
        self.byes = 0
        self.never_acked: set[str] = set()

    def on_event(self, event: Event, now: float) -> None:
        layer = self.loop.layer
        if isinstance(event, AckNotReceived):
            self.never_acked.add(event.invite.call_id)
        if not isinstance(event, RequestReceived) or event.transaction is None:
            return
        request = event.request
        if request.method == "INVITE" and request.to.tag is None:
            self.invites += 1
            tag = new_tag()
            ringing = make_response(request, 180, to_tag=tag)
            ringing.headers.add("Contact", str(self.contact))
            dialog = self.dialogs.add(Dialog.from_uas(request, ringing, self.contact))
            layer.send_response(ringing, now)
            ok = dialog.create_response(request, 200, body=SDP)
            layer.send_response(ok, now)
            return
        found = self.dialogs.dispatch(request)
        if not isinstance(found, Dialog):
            if found is not None:
                layer.send_response(found, now)
            return
        error = found.receive_request(request)
        layer.send_response(error or found.create_response(request, 200), now)
        if request.method == "BYE" and error is None:
            self.byes += 1
            self.dialogs.remove(found)


def test_sipp_uac_through_ten_percent_loss(tmp_path: Path) -> None:
    uas = Uas()
    sipp = peer.start(
        f"127.0.0.1:{uas.loop.port}",
        "-sn",
        "uac",
        "-lost",
        "10",
        "-m",
        "20",
        "-r",
        "10",
        "-p",
        str(free_port()),
        cwd=tmp_path,
    )
    try:
        uas.loop.serve(lambda: sipp.poll() is not None, limit=90.0)
        out, _ = sipp.communicate(timeout=30)
    finally:
        peer.stop(sipp)
        uas.loop.close()
    assert sipp.returncode == 0, out[-3000:]
    assert uas.invites == 20
    # sipp's built-in uac waits for "a 200" after its BYE: when its ACK and its first BYE are
    # both lost, our retransmitted 2xx to the INVITE (s13.3.1.4) arrives first and sipp takes
    # it for the BYE's answer, so that call ends at sipp without any BYE reaching us. Such a
    # call is recognisable here: its ACK never arrived, so its 2xx is still retransmitted.
    layer = uas.loop.layer
    unacked = {
        d.id.call_id
        for d in uas.dialogs.dialogs.values()
        if d.id.call_id in uas.never_acked
        or layer.retransmitting_2xx(d.id.call_id, 1, d.id.local_tag)
    }
    assert unacked == {d.id.call_id for d in uas.dialogs.dialogs.values()}
    assert uas.byes + len(unacked) == 20
