"""RFC 4028 session timers: header fields, UAS (s9) and UAC (s7) rules, the timer (s10)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from focus.sip.errors import LocalProtocolError, SipParseError
from focus.sip.headers import Headers
from focus.sip.message import Request, Response
from focus.sip.parser import parse_message
from focus.sip.session_timer import (
    IntervalTooSmall,
    Negotiated,
    RefreshDue,
    Refresher,
    SessionExpired,
    SessionExpires,
    SessionTimer,
    SessionTimerConfig,
    SessionTimerHeaderError,
    TimerAnswer,
    TimerRequest,
    TimerTable,
    format_min_se,
    initial_request,
    parse_min_se,
    parse_session_expires,
    uas_answer,
)
from tests.paths import VECTORS

CONFIG = SessionTimerConfig()


def _vector(name: str) -> Request | Response:
    return parse_message((VECTORS / "rfc4028" / name).read_bytes())


def _field(headers: Headers, name: str) -> str:
    value = headers.get(name)
    assert value is not None, name
    return value


def _headers(*items: tuple[str, str]) -> Headers:
    return Headers(items)


def _answer(*items: tuple[str, str], config: SessionTimerConfig = CONFIG) -> TimerAnswer:
    verdict = uas_answer(_headers(*items), config)
    assert isinstance(verdict, TimerAnswer)
    return verdict


# --- s4, s5: the header fields ----------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1800", SessionExpires(1800)),
        ("4000;refresher=uac", SessionExpires(4000, Refresher.UAC)),
        (" 90 ; refresher = UAS ; x=y", SessionExpires(90, Refresher.UAS)),
        ("0001800", SessionExpires(1800)),
        ("99999999999999999999", SessionExpires(2**32 - 1)),
    ],
)
def test_rfc4028_s4_session_expires_parses(text: str, expected: SessionExpires) -> None:
    assert parse_session_expires(text) == expected


@pytest.mark.parametrize(
    "text", ["", "abc", "-1", "1.5", "१२३", "1800;refresher", "1800;refresher=me", "90;;"]
)
def test_rfc4028_s4_malformed_session_expires_is_the_peers_400(text: str) -> None:
    with pytest.raises(SessionTimerHeaderError) as info:
        parse_session_expires(text)
    assert info.value.status == 400
    assert isinstance(info.value, SipParseError)


def test_rfc4028_s4_session_expires_wire_form() -> None:
    assert str(SessionExpires(4000, Refresher.UAC)) == "4000;refresher=uac"
    assert str(SessionExpires(1800)) == "1800"


def test_rfc4028_s5_min_se_parses_and_formats() -> None:
    assert parse_min_se("3600") == 3600
    assert parse_min_se("120;foo=bar") == 120
    assert format_min_se(90) == "90"
    with pytest.raises(SessionTimerHeaderError):
        parse_min_se("3600;")
    with pytest.raises(LocalProtocolError):
        format_min_se(89)  # s5: never below 90


def test_rfc4028_s5_config_min_se_never_below_90() -> None:
    with pytest.raises(LocalProtocolError):
        SessionTimerConfig(min_se=60)
    with pytest.raises(LocalProtocolError):
        SessionTimerConfig(session_expires=100, min_se=200)


def test_rfc4028_s4_two_session_expires_fields_are_a_400() -> None:
    with pytest.raises(SessionTimerHeaderError):
        uas_answer(_headers(("Session-Expires", "1800"), ("x", "1800")), CONFIG)


# --- s9: UAS ----------------------------------------------------------------------------


def test_rfc4028_s9_interval_below_our_min_se_gets_422_with_our_min_se() -> None:
    verdict = uas_answer(_vector("m01-invite.sip").headers, SessionTimerConfig(3600, min_se=3600))
    assert verdict == IntervalTooSmall(3600)
    assert verdict.status == 422
    assert verdict.headers() == (("Min-SE", "3600"),)


def test_rfc4028_s9_422_even_without_supported_timer() -> None:
    # s11.1: answering it would let whoever inserted the header set our refresh rate.
    assert uas_answer(_headers(("Session-Expires", "10")), CONFIG) == IntervalTooSmall(90)


def test_rfc4028_s9_interval_below_its_own_min_se_gets_422() -> None:
    verdict = uas_answer(
        _headers(("Supported", "timer"), ("Session-Expires", "100"), ("Min-SE", "200")), CONFIG
    )
    assert verdict == IntervalTooSmall(200)


def test_rfc4028_s9_the_rfc_example_answer_message_15() -> None:
    config = SessionTimerConfig(refresh_ourselves=False)
    answer = _answer(*_vector("m10-invite.sip").headers, config=config)
    response = _vector("m15-200.sip")
    assert answer.session_expires == parse_session_expires(
        _field(response.headers, "Session-Expires")
    )
    assert ("Require", "timer") in answer.headers()
    assert ("Supported", "timer") in answer.headers()
    assert answer.negotiated == Negotiated(4000, we_refresh=False)


def test_rfc4028_s9_may_lower_the_interval_never_below_min_se() -> None:
    answer = _answer(("Supported", "timer"), ("Session-Expires", "7200"))
    assert answer.session_expires == SessionExpires(1800, Refresher.UAS)
    answer = _answer(("Supported", "timer"), ("Session-Expires", "7200"), ("Min-SE", "3000"))
    assert answer.session_expires == SessionExpires(3000, Refresher.UAS)
    assert answer.min_se_seen == 3000  # s7.4: our refreshes on this dialog ask at least it


def test_rfc4028_s9_never_raises_the_interval() -> None:
    answer = _answer(("Supported", "timer"), ("Session-Expires", "600"))
    assert answer.session_expires == SessionExpires(600, Refresher.UAS)


@pytest.mark.parametrize(
    ("supported", "param", "expected"),
    [
        (False, None, Refresher.UAS),  # Table 2 row 1
        (False, "uac", Refresher.UAS),  # rows 2-3 (NA): the UAC cannot refresh
        (True, None, Refresher.UAS),  # row 4: our choice (refresh_ourselves)
        (True, "uac", Refresher.UAC),  # row 5
        (True, "uas", Refresher.UAS),  # row 6
    ],
)
def test_rfc4028_s9_table_2_refresher(
    supported: bool, param: str | None, expected: Refresher
) -> None:
    items = [("Session-Expires", "1800" if param is None else f"1800;refresher={param}")]
    if supported:
        items.append(("Supported", "100rel, TIMER"))
    answer = _answer(*items)
    assert answer.session_expires == SessionExpires(1800, expected)
    # s9: Require MUST with refresher=uac, SHOULD with uas when the UAC supports timer.
    assert answer.require_timer is supported
    assert (("Require", "timer") in answer.headers()) is supported


def test_rfc4028_s9_table_2_row_4_may_leave_refreshing_to_the_uac() -> None:
    config = SessionTimerConfig(refresh_ourselves=False)
    answer = _answer(("Supported", "timer"), ("Session-Expires", "1800"), config=config)
    assert answer.session_expires == SessionExpires(1800, Refresher.UAC)
    assert answer.negotiated == Negotiated(1800, we_refresh=False)


def test_rfc4028_s9_uas_may_ask_a_timer_of_a_uac_that_supports_it() -> None:
    answer = _answer(("Supported", "timer"), ("Min-SE", "2400"))
    assert answer.session_expires == SessionExpires(2400, Refresher.UAS)
    assert answer.negotiated == Negotiated(2400, we_refresh=True)


def test_rfc4028_s9_no_timer_when_nobody_asks() -> None:
    assert _answer().negotiated is None
    assert _answer().headers() == (("Supported", "timer"),)
    no_ask = SessionTimerConfig(request_timer=False)
    assert _answer(("Supported", "timer"), config=no_ask).negotiated is None


# --- s7: UAC ----------------------------------------------------------------------------


def test_rfc4028_s7_1_our_invite_headers() -> None:
    assert initial_request(CONFIG).headers() == (
        ("Supported", "timer"),
        ("Session-Expires", "1800"),
        ("Min-SE", "90"),
    )
    # s7.1: Supported: timer even when we ask no timer.
    assert initial_request(SessionTimerConfig(request_timer=False)).headers() == (
        ("Supported", "timer"),
        ("Min-SE", "90"),
    )


def test_rfc4028_s7_4_the_rfc_example_422_retries() -> None:
    first = TimerRequest(90, parse_session_expires(_field(_vector("m01-invite.sip").headers, "x")))
    second = first.after_422(_vector("m02-422.sip").headers)
    assert second is not None
    message_4 = _vector("m04-invite.sip").headers
    assert dict(second.headers()) | {"Supported": "timer"} == {
        "Supported": _field(message_4, "Supported"),
        "Session-Expires": _field(message_4, "Session-Expires"),
        "Min-SE": _field(message_4, "Min-SE"),
    }
    third = second.after_422(_headers(("Min-SE", "4000")))  # message 6
    assert third is not None
    message_10 = _vector("m10-invite.sip").headers
    assert ("Session-Expires", _field(message_10, "Session-Expires")) in third.headers()
    assert ("Min-SE", _field(message_10, "Min-SE")) in third.headers()


def test_rfc4028_s7_4_a_422_that_asks_no_more_ends_the_retries() -> None:
    offer = initial_request(CONFIG)
    assert offer.after_422(_headers(("Min-SE", "1800"))) is None
    assert offer.after_422(_headers(("Min-SE", "60"))) is None
    with pytest.raises(SessionTimerHeaderError):
        offer.after_422(_headers())  # s6: a 422 MUST carry Min-SE


def test_rfc4028_s7_4_initial_request_after_a_422_on_the_call_id() -> None:
    assert initial_request(CONFIG, min_se=3600).headers()[1:] == (
        ("Session-Expires", "3600"),
        ("Min-SE", "3600"),
    )


def test_rfc4028_s7_2_the_rfc_example_2xx_makes_us_refresher() -> None:
    offer = TimerRequest(4000, SessionExpires(4000))
    assert offer.read_2xx(_vector("m15-200.sip").headers) == Negotiated(4000, we_refresh=True)


def test_rfc4028_s7_2_refresher_uas_leaves_refreshing_to_the_peer() -> None:
    negotiated = initial_request(CONFIG).read_2xx(
        _headers(("Session-Expires", "900;refresher=uas"))
    )
    assert negotiated == Negotiated(900, we_refresh=False)


def test_rfc4028_s7_2_uas_without_timer_leaves_us_refreshing_our_interval() -> None:
    assert initial_request(CONFIG).read_2xx(_headers()) == Negotiated(1800, we_refresh=True)
    no_ask = initial_request(SessionTimerConfig(request_timer=False))
    assert no_ask.read_2xx(_headers()) is None  # no Session-Expires anywhere: no timer


def test_rfc4028_s7_2_a_2xx_we_did_not_ask_still_sets_a_timer() -> None:
    no_ask = initial_request(SessionTimerConfig(request_timer=False))
    negotiated = no_ask.read_2xx(_headers(("Session-Expires", "1200;refresher=uac")))
    assert negotiated == Negotiated(1200, we_refresh=True)


def test_rfc4028_s11_1_a_2xx_faster_than_our_min_se_is_taken_at_our_min_se() -> None:
    offer = initial_request(SessionTimerConfig(min_se=600))
    negotiated = offer.read_2xx(_headers(("Session-Expires", "1;refresher=uac")))
    assert negotiated == Negotiated(600, we_refresh=True)


def test_rfc4028_s7_2_missing_refresher_makes_us_refresh() -> None:
    negotiated = initial_request(CONFIG).read_2xx(_headers(("Session-Expires", "1800")))
    assert negotiated == Negotiated(1800, we_refresh=True)


def test_rfc4028_s7_4_refresh_request_keeps_roles_and_interval() -> None:
    timer = SessionTimer(Negotiated(4000, we_refresh=True), now=0.0)
    assert timer.refresh_request(CONFIG).headers()[1] == ("Session-Expires", "4000;refresher=uac")
    peer = SessionTimer(Negotiated(1800, we_refresh=False), now=0.0)
    assert peer.refresh_request(CONFIG).headers()[1] == ("Session-Expires", "1800;refresher=uas")
    peer.saw_min_se(2400)  # a 422 or a request on the dialog carried Min-SE 2400
    assert peer.refresh_request(CONFIG).headers()[1:] == (
        ("Session-Expires", "2400;refresher=uas"),
        ("Min-SE", "2400"),
    )


# --- s10: the timer ---------------------------------------------------------------------


def test_rfc4028_s10_refresher_refreshes_at_half_the_interval() -> None:
    # The RFC example: Alice refreshes "around 2000 seconds later".
    timer = SessionTimer(Negotiated(4000, we_refresh=True), now=100.0)
    assert timer.get_timer() == 2100.0
    assert timer.handle_timer(2099.0) is None
    assert timer.handle_timer(2100.0) == RefreshDue(2100.0)
    assert timer.handle_timer(2100.0) is None  # once
    # The refresh fails to come back: the session ends before it expires (s10).
    assert timer.get_timer() == 100.0 + 4000 - 32
    assert timer.handle_timer(5000.0) == SessionExpired(4068.0, 4000)
    assert timer.get_timer() is None


def test_rfc4028_s10_non_refresher_byes_32_s_before_expiry() -> None:
    # The RFC example: "3968 seconds later, Bob times out and sends a BYE".
    answer = _answer(
        *_vector("m18-update.sip").headers, config=SessionTimerConfig(session_expires=4000)
    )
    response = _vector("m21-200.sip").headers
    assert answer.session_expires == parse_session_expires(_field(response, "Session-Expires"))
    assert ("Require", _field(response, "Require")) in answer.headers()
    assert answer.negotiated is not None
    timer = SessionTimer(answer.negotiated, now=0.0)
    assert timer.get_timer() == 3968.0
    assert timer.handle_timer(3968.0) == SessionExpired(3968.0, 4000)


def test_rfc4028_s10_short_interval_byes_a_third_early() -> None:
    timer = SessionTimer(Negotiated(90, we_refresh=False), now=0.0)
    assert timer.get_timer() == 60.0


def test_rfc4028_s10_a_refresh_moves_both_deadlines() -> None:
    timer = SessionTimer(Negotiated(1800, we_refresh=True), now=0.0)
    assert timer.handle_timer(900.0) == RefreshDue(900.0)
    timer.refreshed(Negotiated(1800, we_refresh=True), now=901.0)
    assert timer.get_timer() == 1801.0
    assert timer.handle_timer(1800.0) is None


def test_rfc4028_s10_a_refresh_may_swap_roles() -> None:
    timer = SessionTimer(Negotiated(1800, we_refresh=True), now=0.0)
    timer.refreshed(Negotiated(1200, we_refresh=False), now=10.0)
    assert timer.get_timer() == 10.0 + 1200 - 32


def test_rfc4028_s7_2_a_2xx_without_session_expires_turns_the_timer_off() -> None:
    timer = SessionTimer(Negotiated(1800, we_refresh=False), now=0.0)
    timer.refreshed(None, now=5.0)
    assert timer.get_timer() is None
    assert timer.handle_timer(10_000.0) is None


def test_rfc4028_s4_negotiated_interval_never_below_90() -> None:
    with pytest.raises(LocalProtocolError):
        Negotiated(89, we_refresh=True)


# --- properties -------------------------------------------------------------------------

_TEXT = st.text(st.characters(blacklist_characters="\r\n\x00"), max_size=40)
_VALUE = st.one_of(
    _TEXT,
    st.integers(0, 10**30).map(str),
    st.builds(
        lambda n, p: f"{n};refresher={p}",
        st.integers(0, 10**6),
        st.sampled_from(["uac", "uas", "UAC", "x", ""]),
    ),
)
_FIELD = st.sampled_from(["Session-Expires", "x", "Min-SE", "Supported", "Require"])


@given(st.lists(st.tuples(_FIELD, _VALUE), max_size=6))
def test_rfc4028_s9_s7_any_header_values_give_a_verdict_or_the_modules_error(
    items: list[tuple[str, str]],
) -> None:
    headers = Headers(items)
    try:
        verdict = uas_answer(headers, CONFIG)
    except SessionTimerHeaderError as exc:
        assert exc.status == 400
    else:
        if isinstance(verdict, IntervalTooSmall):
            assert verdict.min_se >= CONFIG.min_se
        else:
            for _name, value in verdict.headers():
                assert "\r" not in value and "\n" not in value
    offer = initial_request(CONFIG)
    for step in (offer.read_2xx, offer.after_422):
        try:
            step(headers)
        except SessionTimerHeaderError as exc:
            assert exc.status == 400


@given(
    interval=st.integers(90, 10**6),
    we_refresh=st.booleans(),
    start=st.floats(0, 1e6),
    steps=st.lists(st.tuples(st.floats(0, 1e6), st.integers(90, 10**6), st.booleans()), max_size=8),
)
def test_rfc4028_s10_expiry_never_before_refresh_and_a_refresh_moves_both(
    interval: int,
    we_refresh: bool,
    start: float,
    steps: list[tuple[float, int, bool]],
) -> None:
    timer = SessionTimer(Negotiated(interval, we_refresh), start)
    now = start
    for delay, new_interval, new_role in steps:
        deadline = timer.get_timer()
        if timer.we_refresh and deadline is not None and timer.expires_at is not None:
            assert deadline < timer.expires_at  # the refresh comes first
        now += delay
        event = timer.handle_timer(now)
        if isinstance(event, RefreshDue):
            assert event.at <= now and timer.expires_at is not None
            assert event.at < timer.expires_at
        elif isinstance(event, SessionExpired):
            assert event.at <= now and timer.get_timer() is None
        timer.refreshed(Negotiated(new_interval, new_role), now)
        expires_at = timer.expires_at
        assert expires_at is not None and expires_at > now
        assert expires_at >= now + new_interval - 32
        if new_role:
            assert timer.get_timer() == now + new_interval / 2
        else:
            assert timer.get_timer() == expires_at


# --- TimerTable: many dialogs' timers behind one deadline ---------------------------------


def test_timer_table_gives_the_earliest_deadline_and_each_event_once() -> None:
    table: TimerTable[str] = TimerTable()
    table.start("refresher", Negotiated(90, we_refresh=True), now=0.0)  # refresh at 45
    table.start("bystander", Negotiated(120, we_refresh=False), now=0.0)  # BYE at 88
    assert table.get_timer() == 45.0
    ((key, _, event),) = table.handle_timer(45.0)
    assert key == "refresher" and isinstance(event, RefreshDue)
    assert table.handle_timer(45.0) == []  # once
    assert table.get_timer() == 60.0  # the refresher's expiry: 90 - 30
    expired = table.handle_timer(88.0)
    assert sorted(k for k, _, e in expired if isinstance(e, SessionExpired)) == [
        "bystander",
        "refresher",
    ]
    assert "refresher" not in table and table.get_timer() is None


def test_timer_table_restart_and_forget_leave_no_stale_deadline() -> None:
    table: TimerTable[str] = TimerTable()
    table.start("a", Negotiated(90, we_refresh=True), now=0.0)
    table.start("a", Negotiated(90, we_refresh=True), now=30.0)  # a refresh's 2xx
    assert table.get_timer() == 75.0
    assert table.handle_timer(50.0) == []  # the old deadline (45) went stale
    table.start("b", Negotiated(90, we_refresh=True), now=0.0)
    assert table.forget("b") is not None
    assert table.get_timer() == 75.0
    table.start("a", None, now=40.0)  # a 2xx without Session-Expires: the timer is off
    assert table.get_timer() is None and "a" in table
