"""RFC 4733: payload codec against the RFC's figure, the receiver against Table 5 and faults."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from mediactrl.media.dtmf import (
    DigitReport,
    DtmfReceiver,
    TelephoneEvent,
    build_events,
    dtmf_tone,
    parse_events,
)
from mediactrl.media.errors import MalformedPacket
from mediactrl.media.rtp import RtpPacket, build_rtp, parse_rtp

VECTORS = Path(__file__).parent / "vectors" / "rfc4733"
SSRC = 0x5234A8


def _lines(name: str) -> list[str]:
    text = (VECTORS / name).read_text()
    return [line for line in text.splitlines() if line.strip() and not line.startswith("#")]


def table5() -> list[tuple[float, RtpPacket]]:
    rows = []
    for line in _lines("table5-events.csv"):
        time_ms, marker, ts, seq, event, duration, end = (int(x) for x in line.split(","))
        payload = build_events(TelephoneEvent(event, bool(end), 0, duration))
        rows.append((time_ms / 1000, RtpPacket(100, seq, ts, SSRC, payload, bool(marker))))
    return rows


def test_figure3_packet_decodes_to_its_fields_and_re_encodes_identically() -> None:
    data = bytes.fromhex(" ".join(_lines("figure3-packet.hex")))
    packet = parse_rtp(data)
    assert (packet.payload_type, packet.sequence, packet.timestamp, packet.ssrc) == (
        100,
        18,
        11200,
        SSRC,
    )
    assert parse_events(packet.payload) == (TelephoneEvent(1, True, 20, 1760),)
    assert build_rtp(packet) == data


def test_table5_reports_911_once_each_despite_retransmitted_end_packets() -> None:
    receiver = DtmfReceiver()
    reports: list[DigitReport] = []
    for now, packet in table5():
        reports += receiver.receive(packet, now)
    assert [(r.digit, r.duration, r.start_timestamp, r.end_seen) for r in reports] == [
        ("9", 1600, 0, True),
        ("1", 2000, 7040, True),
        ("1", 1760, 11200, True),
    ]
    assert receiver.active_digit is None


def test_digit_is_active_from_its_first_packet_until_its_end() -> None:
    receiver = DtmfReceiver()
    packets = table5()
    receiver.receive(packets[0][1], packets[0][0])
    assert receiver.active_digit == "9"
    for now, packet in packets[1:4]:
        assert receiver.receive(packet, now) == []
    assert receiver.active_digit == "9"
    assert len(receiver.receive(packets[4][1], packets[4][0])) == 1
    assert receiver.active_digit is None


def test_lost_end_packets_report_the_digit_when_the_next_one_starts() -> None:
    receiver = DtmfReceiver()
    reports: list[DigitReport] = []
    for now, packet in table5():
        if parse_events(packet.payload)[0].end and packet.timestamp == 0:
            continue  # every end packet of "9" lost
        reports += receiver.receive(packet, now)
    first = reports[0]
    assert (first.digit, first.duration, first.end_seen) == ("9", 1600, False)
    assert len(reports) == 3


def test_lost_end_packets_of_the_last_digit_report_it_after_the_soft_timeout() -> None:
    receiver = DtmfReceiver(soft_timeout=0.5)
    for now, packet in table5()[:4]:
        receiver.receive(packet, now)
    assert receiver.expire(0.6) == []
    [report] = receiver.expire(0.71)
    assert (report.digit, report.duration, report.end_seen) == ("9", 1600, False)
    assert receiver.expire(5.0) == []


def test_reordered_packets_never_shorten_or_duplicate_a_digit() -> None:
    receiver = DtmfReceiver()
    packets = table5()[:6]
    order = [0, 2, 1, 3, 5, 4]  # an end retransmission overtakes the first end packet
    reports: list[DigitReport] = []
    for i in order:
        reports += receiver.receive(packets[i][1], packets[i][0])
    assert [(r.digit, r.duration) for r in reports] == [("9", 1600)]


def test_long_event_segments_join_into_one_digit() -> None:
    receiver = DtmfReceiver()
    first = RtpPacket(101, 1, 1000, 7, build_events(TelephoneEvent(5, False, 10, 0xFFFF)))
    second = RtpPacket(101, 2, 1000 + 0xFFFF, 7, build_events(TelephoneEvent(5, True, 10, 800)))
    assert receiver.receive(first, 0.0) == []
    [report] = receiver.receive(second, 0.1)
    assert (report.digit, report.duration, report.start_timestamp) == ("5", 0xFFFF + 800, 1000)


def test_packed_events_are_each_reported_with_derived_start_times() -> None:
    receiver = DtmfReceiver()
    payload = build_events(TelephoneEvent(1, True, 10, 800), TelephoneEvent(2, True, 10, 400))
    reports = receiver.receive(RtpPacket(101, 1, 5000, 7, payload, True), 0.0)
    assert [(r.digit, r.start_timestamp) for r in reports] == [("1", 5000), ("2", 5800)]


def test_non_dtmf_events_are_counted_not_reported() -> None:
    receiver = DtmfReceiver()
    payload = build_events(TelephoneEvent(16, True, 10, 800))  # flash hook
    assert receiver.receive(RtpPacket(101, 1, 0, 7, payload), 0.0) == []
    assert receiver.non_dtmf_events == 1


@pytest.mark.parametrize("payload", [b"", b"\x01\x02\x03", b"\x01\x80\x00\x10\x02"])
def test_payloads_not_made_of_4_byte_events_are_rejected(payload: bytes) -> None:
    with pytest.raises(MalformedPacket, match="multiple of 4"):
        parse_events(payload)


@pytest.mark.parametrize(("digit", "low", "high"), [("1", 697, 1209), ("#", 941, 1477)])
def test_tone_holds_the_two_keypad_frequencies(digit: str, low: int, high: int) -> None:
    tone = dtmf_tone(digit, 0, 8000)
    spectrum = np.abs(np.fft.rfft(tone))
    peaks = sorted(int(i) for i in np.argsort(spectrum)[-2:])
    assert peaks == [low, high]  # 1 Hz bins for one second at 8 kHz


def test_tone_continues_in_phase_across_frames() -> None:
    whole = dtmf_tone("5", 0, 320)
    parts = np.concatenate([dtmf_tone("5", 0, 160), dtmf_tone("5", 160, 160)])
    assert np.allclose(whole, parts)
    with pytest.raises(ValueError, match="not a DTMF digit"):
        dtmf_tone("E", 0, 1)
