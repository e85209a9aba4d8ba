"""The media timeout's pure watch: no RTP and no RTCP for ``timeout`` seconds while media is
expected is reported once per silence; hold suspends it and a resume counts afresh."""

from __future__ import annotations

from mediactrl.media.silence import SilenceWatch


def test_silence_is_reported_once_after_the_timeout() -> None:
    watch = SilenceWatch(2.0, now=10.0)
    assert watch.deadline == 12.0
    assert watch.check(12.0) is None  # not before it has passed
    assert watch.check(12.5) == 2.5
    assert watch.check(20.0) is None  # once per silence
    watch.heard(21.0)  # a packet: a new silence may come
    assert watch.check(23.5) == 2.5


def test_any_packet_rtp_or_rtcp_restarts_the_count() -> None:
    watch = SilenceWatch(2.0, now=0.0)
    for t in (1.5, 3.0, 4.5):
        watch.heard(t)
        assert watch.check(t + 1.9) is None


def test_hold_suspends_and_a_resume_counts_from_the_resume() -> None:
    watch = SilenceWatch(2.0, now=0.0)
    watch.expect(False, 1.0)  # on hold: a held phone may send nothing
    assert watch.deadline is None and watch.check(100.0) is None
    watch.expect(True, 100.0)
    assert watch.check(101.9) is None
    assert watch.check(102.1) is not None


def test_no_timeout_never_reports_and_a_new_one_counts_from_now() -> None:
    watch = SilenceWatch(None, now=0.0)
    assert watch.check(1e9) is None
    watch.set_timeout(5.0, now=50.0)  # an old silence does not answer a fresh request
    assert watch.check(54.0) is None
    assert watch.check(55.5) == 5.5
