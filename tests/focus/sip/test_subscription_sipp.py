"""A real third-party subscriber (sipp) against our Notifier over loopback UDP.

The Notifier, the dialogs and the transaction layer are driven by a small blocking
socket loop in this file (the sans-IO modules take bytes and ``now``); sipp runs a
checking scenario: 423 then a successful SUBSCRIBE, the immediate NOTIFY, and an
unsubscribe answered by a terminated NOTIFY.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from focus.sip.events import Event, RequestReceived, ResponseReceived
from focus.sip.headers import parse_name_addr
from focus.sip.message import Request
from focus.sip.subscription import Notifier, NotifierConfig, Subscription
from tests import sipp as peer
from tests.focus.sip.conftest import free_port
from tests.focus.sip.test_transaction_wire import UdpLoop

pytestmark = [
    pytest.mark.interop,
    pytest.mark.skipif(shutil.which("sipp") is None, reason="sipp is not installed"),
]

BODY = (
    "application/conference-info+xml",
    b'<?xml version="1.0"?>\n<conference-info xmlns="urn:ietf:params:xml:ns:conference-info"'
    b' entity="sip:conf@127.0.0.1" state="full" version="1"/>\n',
)

SCENARIO = """<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="checking conference subscriber">
  <send retrans="500">
    <![CDATA[

      SUBSCRIBE sip:conf@[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: <sip:sipp@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
      To: <sip:conf@[remote_ip]:[remote_port]>
      Call-ID: [call_id]
      CSeq: 1 SUBSCRIBE
      Contact: <sip:sipp@[local_ip]:[local_port]>
      Max-Forwards: 70
      Event: conference
      Expires: 10
      Content-Length: 0

    ]]>
  </send>

  <recv response="423">
    <action>
      <ereg regexp="^ *60" search_in="hdr" header="Min-Expires:" check_it="true"
            assign_to="dummy"/>
    </action>
  </recv>

  <send retrans="500">
    <![CDATA[

      SUBSCRIBE sip:conf@[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: <sip:sipp@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
      To: <sip:conf@[remote_ip]:[remote_port]>
      Call-ID: [call_id]
      CSeq: 2 SUBSCRIBE
      Contact: <sip:sipp@[local_ip]:[local_port]>
      Max-Forwards: 70
      Event: conference
      Expires: 600
      Content-Length: 0

    ]]>
  </send>

  <recv response="200">
    <action>
      <ereg regexp="^ *600" search_in="hdr" header="Expires:" check_it="true"
            assign_to="dummy"/>
      <ereg regexp=";tag=([^;> ]+)" search_in="hdr" header="To:" check_it="true"
            assign_to="dummy,totag"/>
      <ereg regexp="&lt;sip:([^&gt;]+)&gt;" search_in="hdr" header="Contact:"
            check_it="true" assign_to="dummy,contact"/>
    </action>
  </recv>

  <recv request="NOTIFY" crlf="true">
    <action>
      <ereg regexp="^ *active;expires=(600|599)" search_in="hdr"
            header="Subscription-State:" check_it="true" assign_to="dummy"/>
      <ereg regexp="^ *conference" search_in="hdr" header="Event:" check_it="true"
            assign_to="dummy"/>
      <ereg regexp="application/conference-info\\+xml" search_in="hdr" header="Content-Type:"
            check_it="true" assign_to="dummy"/>
      <ereg regexp="conference-info xmlns" search_in="body" check_it="true"
            assign_to="dummy"/>
      <ereg regexp="[0-9]+SIPpTag00" search_in="hdr" header="To:" check_it="true"
            assign_to="dummy"/>
    </action>
  </recv>

  <send>
    <![CDATA[

      SIP/2.0 200 OK
      [last_Via:]
      [last_From:]
      [last_To:]
      [last_Call-ID:]
      [last_CSeq:]
      Content-Length: 0

    ]]>
  </send>

  <send retrans="500">
    <![CDATA[

      SUBSCRIBE sip:[$contact] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: <sip:sipp@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
      To: <sip:conf@[remote_ip]:[remote_port]>;tag=[$totag]
      Call-ID: [call_id]
      CSeq: 3 SUBSCRIBE
      Contact: <sip:sipp@[local_ip]:[local_port]>
      Max-Forwards: 70
      Event: conference
      Expires: 0
      Content-Length: 0

    ]]>
  </send>

  <recv response="200">
    <action>
      <ereg regexp="^ *0" search_in="hdr" header="Expires:" check_it="true"
            assign_to="dummy"/>
    </action>
  </recv>

  <recv request="NOTIFY" crlf="true">
    <action>
      <ereg regexp="^ *terminated;reason=timeout" search_in="hdr"
            header="Subscription-State:" check_it="true" assign_to="dummy"/>
    </action>
  </recv>

  <send>
    <![CDATA[

      SIP/2.0 200 OK
      [last_Via:]
      [last_From:]
      [last_To:]
      [last_Call-ID:]
      [last_CSeq:]
      Content-Length: 0

    ]]>
  </send>
</scenario>
"""


class NotifierServer:
    """Our notifier on a real UDP socket (see test_transaction_wire.UdpLoop)."""

    def __init__(self) -> None:
        self.loop = UdpLoop(self.on_event)
        self.port = self.loop.port
        self.notifier = Notifier(
            NotifierConfig(
                packages=frozenset({"conference"}),
                sent_by=self.loop.sent_by,
                contact=parse_name_addr(f"<sip:conf@127.0.0.1:{self.port}>"),
                min_expires=60,
            )
        )
        self.loop.timers.append(self.notifier.get_timer)
        self.loop.on_tick.append(self.expire)
        self.by_notify: dict[str, Subscription] = {}
        self.statuses: list[int] = []

    def _send_notify(self, sub: Subscription, notify: Request, now: float) -> None:
        flow = self.loop.flow_to(sub.dialog.next_hop())
        key = self.loop.layer.send_request(notify, flow, now)
        self.by_notify[key.branch] = sub

    def expire(self, now: float) -> None:
        for sub, notify in self.notifier.handle_timer(now):
            self._send_notify(sub, notify, now)

    def on_event(self, event: Event, now: float) -> None:
        if isinstance(event, RequestReceived) and event.transaction is not None:
            result = self.notifier.receive_subscribe(event.request, now, body_for=lambda s: BODY)
            self.statuses.append(result.response.status)
            self.loop.layer.send_response(result.response, now)
            if result.notify is not None and result.subscription is not None:
                self._send_notify(result.subscription, result.notify, now)
        elif isinstance(event, ResponseReceived) and event.request.method == "NOTIFY":
            notified = self.by_notify.get(event.transaction.branch)
            if notified is not None:
                self.notifier.notify_response(notified, event.response)


def test_sipp_subscriber_against_our_notifier(tmp_path: Path) -> None:
    scenario = tmp_path / "subscriber.xml"
    scenario.write_text(SCENARIO)
    server = NotifierServer()
    try:
        proc = peer.start(
            f"127.0.0.1:{server.port}",
            "-sf",
            str(scenario),
            "-m",
            "3",
            "-p",
            str(free_port()),
            "-max_socket",
            "512",
            cwd=tmp_path,
        )
        try:
            server.loop.serve(lambda: proc.poll() is not None)
            out, _ = proc.communicate(timeout=30)
        finally:
            peer.stop(proc)
        assert proc.returncode == 0, out[-3000:]
        # three subscribers: 423, 200 (subscribe), 200 (unsubscribe) each
        assert sorted(server.statuses) == sorted([423, 200, 200] * 3)
        assert server.notifier.subscriptions == {}
    finally:
        server.loop.close()
