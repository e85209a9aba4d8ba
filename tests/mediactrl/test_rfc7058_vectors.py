"""RFC 7058 call flows as test vectors: parsed, round-tripped and replayed.

The data files under tests/vectors/rfc7058/ are produced by extract_rfc7058.py from the RFC
text; the first test checks they still are.  Every message goes through the CFW parser and back
through the serializer; every msc-mixer body through the mixer codec.  Then each flow (one
section, one application server) is replayed on a client and a server connection: requests are
produced by the sending side's API and must equal the RFC bytes, the RFC bytes are fed to the
receiving side, and the answers the RFC shows must be the ones our machines give.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import pytest
from lxml import etree

from mediactrl.cfw.connection import CfwConfig, CfwConnection, Side
from mediactrl.cfw.errors import LocalProtocolError
from mediactrl.cfw.events import (
    ChannelClosed,
    ControlReceived,
    Event,
    ReportReceived,
    ResponseReceived,
    SyncCompleted,
    SyncReceived,
    SyncRefused,
)
from mediactrl.cfw.message import Method, ReportStatus, Request, Response, serialize
from mediactrl.cfw.parser import parse_message
from mediactrl.mixer.codec import CONTENT_TYPE, decode, encode, schema
from tests.paths import VECTORS
from tests.vectors.rfc7058.extract_rfc7058 import DEFAULT_RFC, extract

HERE = VECTORS / "rfc7058"
MANIFEST: list[dict[str, Any]] = json.loads((HERE / "manifest.json").read_text(encoding="utf-8"))
# Dialog-IDs the media server knows from the SIP side (RFC 7058 s5.1, s7.1); 4hrn7490012c of
# s5.4 is the wrong one on purpose.
KNOWN_DIALOGS = {"5feb6486792a", "z9hG4bK-4542-1-0", "replay000001"}
# RFC 7058 s5.4 shows an AS that misbehaves (CONTROL instead of SYNC): our client refuses to,
# so that message is put on the wire as printed.
MISBEHAVING = {"007-5.4-1.cfw"}
DEFAULT_PACKAGES = ("msc-ivr/1.0", "msc-mixer/1.0")


def raw(entry: dict[str, Any]) -> bytes:
    return (HERE / str(entry["file"])).read_bytes()


def test_vectors_are_the_rfc_text() -> None:
    if not DEFAULT_RFC.exists():
        pytest.skip("RFC 7058 text not available")
    extracted = extract(DEFAULT_RFC.read_text(encoding="ascii"))
    assert len(extracted) == len(MANIFEST) == 152
    for entry, message in zip(MANIFEST, extracted, strict=True):
        assert raw(entry) == str(message["wire"]).encode()
        assert {k: v for k, v in entry.items() if k != "file"} == {
            k: v for k, v in message.items() if k != "wire"
        }


@pytest.mark.parametrize("entry", MANIFEST, ids=lambda e: e["file"])
def test_every_message_parses_and_round_trips(entry: dict[str, Any]) -> None:
    data = raw(entry)
    message = parse_message(data)
    assert serialize(message) == data
    if isinstance(message, Request) and message.method == Method.CONTROL:
        assert message.control_package == entry["package"]


MIXER_ENTRIES = [e for e in MANIFEST if f"Content-Type: {CONTENT_TYPE}".encode() in raw(e)]


def test_all_mixer_bodies_are_found() -> None:
    assert len(MIXER_ENTRIES) == 62
    kinds = {type(decode(parse_message(raw(e)).body)).__name__ for e in MIXER_ENTRIES}
    assert kinds == {
        "CreateConference",
        "Join",
        "ModifyJoin",
        "Unjoin",
        "Audit",
        "Response",
        "Event",
        "AuditResponse",
    }


@pytest.mark.parametrize("entry", MIXER_ENTRIES, ids=lambda e: e["file"])
def test_mixer_bodies_decode_and_round_trip(entry: dict[str, Any]) -> None:
    body = parse_message(raw(entry)).body
    message = decode(body)
    again = encode(message)
    assert schema().validate(etree.fromstring(again))
    assert decode(again) == message


# ----------------------------------------------------------------- replay
@dataclass
class Channel:
    client: CfwConnection
    server: CfwConnection
    auto: dict[str, bytes] = field(default_factory=dict)  # side -> answers it queued itself
    raw_fed: set[str] = field(default_factory=set)  # requests put on the wire as printed

    def side(self, name: str) -> CfwConnection:
        return self.client if name == "client" else self.server


def drain(conn: CfwConnection) -> list[Event]:
    out: list[Event] = []
    while (event := conn.next_event()) is not None:
        out.append(event)
    return out


def new_channel(first: Request | Response, flow: list[dict[str, Any]]) -> Channel:
    if isinstance(first, Request) and first.method == Method.SYNC:
        client_packages = first.packages
        answer = next(
            parse_message(raw(e))
            for e in flow
            if parse_message(raw(e)).trans_id == first.trans_id and e is not flow[0]
        )
        server_packages = (*client_packages, *answer.supported)
        client = CfwConfig(client_packages, first.dialog_id, first.keep_alive)
        server = CfwConfig(server_packages)
        return Channel(
            CfwConnection(Side.CLIENT, client, now=0.0), CfwConnection(Side.SERVER, server, now=0.0)
        )
    channel = Channel(
        CfwConnection(Side.CLIENT, CfwConfig(DEFAULT_PACKAGES, "replay000001"), now=0.0),
        CfwConnection(Side.SERVER, CfwConfig(DEFAULT_PACKAGES), now=0.0),
    )
    if isinstance(first, Request) and first.method == Method.CONTROL and not channel_ok(first):
        return channel  # the misbehaving flow: no SYNC at all
    channel.client.sync(0.0)
    channel.server.receive_data(channel.client.data_to_send(), 0.0)
    assert isinstance(drain(channel.server)[0], SyncReceived)
    channel.server.accept_sync(0.0)
    channel.client.receive_data(channel.server.data_to_send(), 0.0)
    assert isinstance(drain(channel.client)[0], SyncCompleted)
    drain(channel.server)
    return channel


def channel_ok(first: Request) -> bool:
    return not any(first.trans_id in raw(e).decode() for e in MANIFEST if e["file"] in MISBEHAVING)


def flows() -> dict[str, list[dict[str, Any]]]:
    grouped: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for entry in MANIFEST:
        peer = entry["from"] if entry["to"] == "MS" else entry["to"]
        grouped[f"{entry['section']}-{peer}"].append(entry)
    return dict(grouped)


FLOWS = flows()


@pytest.mark.parametrize("name", sorted(FLOWS))
def test_flow_replays_on_the_state_machines(name: str) -> None:
    flow = FLOWS[name]
    channel: Channel | None = None
    for entry in flow:
        data = raw(entry)
        message = parse_message(data)
        if channel is None or (channel.server.closed and isinstance(message, Request)):
            # After a channel is torn down (s5.4) the next exchange is on a new connection.
            channel = new_channel(message, flow[flow.index(entry) :])
        sender_name = "client" if entry["to"] == "MS" else "server"
        receiver_name = "server" if sender_name == "client" else "client"
        sender, receiver = channel.side(sender_name), channel.side(receiver_name)
        if isinstance(message, Request):
            send_request(channel, entry, message, sender, data)
            receiver.receive_data(data, 0.0)
            check_request_events(message, receiver, drain(receiver))
            channel.auto[receiver_name] = receiver.data_to_send()
        else:
            queued = channel.auto.pop(sender_name, b"")
            if queued:
                assert queued == data, f"{entry['file']}: our automatic answer differs"
            else:
                sent = respond(sender, message)
                assert (sent.trans_id, sent.code, sent.content_type, sent.body) == (
                    message.trans_id,
                    message.code,
                    message.content_type,
                    message.body,
                )
            if message.trans_id in channel.raw_fed:
                continue  # not a transaction of the receiver's: nothing to deliver
            receiver.receive_data(data, 0.0)
            check_response_events(message, receiver, drain(receiver))
    assert channel is not None
    assert all(not leftover for leftover in channel.auto.values()), channel.auto


def send_request(
    channel: Channel, entry: dict[str, Any], message: Request, sender: CfwConnection, data: bytes
) -> None:
    if entry["file"] in MISBEHAVING:
        with pytest.raises(LocalProtocolError):
            sender.control(message.control_package or "", "x/y", b"", 0.0)
        channel.raw_fed.add(message.trans_id)
        return
    if message.method == Method.SYNC:
        sender.sync(0.0, trans_id=message.trans_id)
    elif message.method == Method.CONTROL:
        sender.control(
            message.control_package or "",
            message.content_type or "",
            message.body,
            0.0,
            trans_id=message.trans_id,
        )
    elif message.method == Method.REPORT:
        sender.report(
            message.trans_id,
            message.status or ReportStatus.UPDATE,
            0.0,
            content_type=message.content_type,
            body=message.body,
            timeout=message.timeout,
        )
    else:
        # K-ALIVE: our client sends it on its own timer with its own id (test_cfw_connection);
        # the printed one is put on the wire to check the server's answer.
        channel.raw_fed.add(message.trans_id)
        return
    assert sender.data_to_send() == data, f"{entry['file']}: we would send other bytes"


def check_request_events(message: Request, receiver: CfwConnection, events: list[Event]) -> None:
    if message.method == Method.CONTROL:
        if receiver.closed:
            assert events == [ChannelClosed("CONTROL before the SYNC completed", 403)]
            return
        assert events == [
            ControlReceived(
                message.trans_id, message.control_package or "", message.content_type, message.body
            )
        ]
    elif message.method == Method.REPORT:
        assert [type(e) for e in events] == [ReportReceived]
    elif message.method == Method.SYNC:
        (event,) = events
        assert isinstance(event, SyncReceived)
        if event.dialog_id in KNOWN_DIALOGS:
            assert receiver.accept_sync(0.0)
            assert [type(e) for e in drain(receiver)] == [SyncCompleted]
        else:
            receiver.reject_sync(481)  # s6: no SIP dialog with that Dialog-ID
            assert [type(e) for e in drain(receiver)] == [ChannelClosed]
    else:
        assert events == []


def respond(sender: CfwConnection, message: Response) -> Response:
    sender.respond(
        message.trans_id,
        message.code,
        content_type=message.content_type,
        body=message.body,
        timeout=message.timeout if message.code == 202 else None,
        now=0.0,
    )
    sent = parse_message(sender.data_to_send())
    assert isinstance(sent, Response)
    return sent


def check_response_events(message: Response, receiver: CfwConnection, events: list[Event]) -> None:
    if receiver.side is Side.CLIENT and receiver.packages == () and message.code != 200:
        assert isinstance(events[0], SyncRefused) and events[0].code == message.code
        return
    (event,) = events
    if isinstance(event, SyncCompleted):
        assert message.code == 200
        return
    assert isinstance(event, ResponseReceived)
    assert (event.trans_id, event.code, event.body) == (
        message.trans_id,
        message.code,
        message.body,
    )
    if event.method == "CONTROL":
        assert event.extended == (message.code == 202)
    else:
        assert event.seq == message.seq


def test_replay_covers_every_message() -> None:
    assert sum(len(flow) for flow in FLOWS.values()) == len(MANIFEST)
    assert {
        "5.2-AS",
        "5.3-AS",
        "5.4-AS",
        "6.3.4-AS",
        "6.4.3-AS",
        "8-AS1",
        "8-AS2",
        "7.1-MRB",
    } <= set(FLOWS)
