"""Arbitrary datagrams never crash the parsers: they decode or raise MalformedPacket."""

from __future__ import annotations

import contextlib

from hypothesis import given, settings
from hypothesis import strategies as st

from mediactrl.media.dtmf import DtmfReceiver, parse_events
from mediactrl.media.errors import MalformedPacket
from mediactrl.media.rtcp import ReceiverReport, build_compound, parse_compound
from mediactrl.media.rtp import RtpPacket, build_rtp, parse_rtp


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=80))
def test_any_bytes_as_rtp(data: bytes) -> None:
    with contextlib.suppress(MalformedPacket):
        packet = parse_rtp(data)
        assert len(packet.payload) <= len(data) - 12


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=120))
def test_any_bytes_as_rtcp(data: bytes) -> None:
    with contextlib.suppress(MalformedPacket):
        assert parse_compound(data)


@settings(max_examples=200, deadline=None)
@given(st.binary(min_size=8, max_size=60), st.integers(0, 59), st.integers(0, 255))
def test_mutated_rtcp_never_escapes_as_another_error(
    body: bytes, position: int, value: int
) -> None:
    data = bytearray(build_compound(ReceiverReport(1)) + b"\x81\xcc\x00\x02" + body[:8])
    data[position % len(data)] = value
    with contextlib.suppress(MalformedPacket):
        parse_compound(bytes(data))


@settings(max_examples=200, deadline=None)
@given(st.lists(st.binary(max_size=12), max_size=8), st.integers(0, 0xFFFFFFFF))
def test_any_event_payloads_into_a_receiver(payloads: list[bytes], ts: int) -> None:
    receiver = DtmfReceiver()
    for seq, payload in enumerate(payloads):
        packet = RtpPacket(101, seq, ts, 5, payload)
        with contextlib.suppress(MalformedPacket):
            parse_rtp(build_rtp(packet))
            for report in receiver.receive(packet, seq * 0.02):
                assert report.digit in "0123456789*#ABCD"
    receiver.expire(1e9)
    assert receiver.active_digit is None
    with contextlib.suppress(MalformedPacket):
        parse_events(b"".join(payloads))
