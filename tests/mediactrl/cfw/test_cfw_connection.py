"""The CFW connection state machines (RFC 6230 s6), client and server back to back.

Bytes go through the real serializer and parser; time is a fake clock advanced by the test.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mediactrl.cfw.connection import (
    TRANSITIONS,
    CfwConfig,
    CfwConnection,
    Side,
    State,
    Trigger,
    package_matches,
)
from mediactrl.cfw.errors import LocalProtocolError
from mediactrl.cfw.events import (
    BadMessageReceived,
    ChannelClosed,
    ControlReceived,
    Event,
    KeepAliveMissed,
    ReportReceived,
    ResponseReceived,
    StrayResponse,
    SyncCompleted,
    SyncReceived,
    SyncRefused,
    TransactionTimedOut,
)
from mediactrl.cfw.message import Method, ReportStatus, Request, Response, serialize
from mediactrl.cfw.parser import CfwParser, NeedData

MIXER = "msc-mixer/1.0"
CT = "application/msc-mixer+xml"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0


class Pair:
    """A client and a server wired back to back."""

    def __init__(
        self, client_config: CfwConfig | None = None, server_config: CfwConfig | None = None
    ) -> None:
        self.clock = Clock()
        self.client = CfwConnection(
            Side.CLIENT,
            client_config or CfwConfig(packages=("msc-ivr/1.0", MIXER), dialog_id="5feb6486792a"),
            now=self.clock.now,
        )
        self.server = CfwConnection(
            Side.SERVER,
            server_config or CfwConfig(packages=(MIXER, "msc-ivr/1.0", "msc-example-pkg/1.0")),
            now=self.clock.now,
        )

    def pump(self) -> None:
        """Delivers bytes both ways until both are quiet."""
        while True:
            to_server = self.client.data_to_send()
            to_client = self.server.data_to_send()
            if not to_server and not to_client:
                return
            if to_server:
                self.server.receive_data(to_server, self.clock.now)
            if to_client:
                self.client.receive_data(to_client, self.clock.now)

    def advance(self, seconds: float) -> None:
        """Moves the clock, firing each side's timers at their deadlines on the way."""
        end = self.clock.now + seconds
        while True:
            timers = [
                t for t in (self.client.get_timer(), self.server.get_timer()) if t is not None
            ]
            due = min(timers, default=None)
            if due is None or due > end:
                break
            self.clock.now = max(self.clock.now, due)
            self.client.handle_timer(self.clock.now)
            self.server.handle_timer(self.clock.now)
            self.pump()
        self.clock.now = end

    def open(self) -> None:
        self.client.sync(self.clock.now)
        self.pump()
        assert isinstance(self.server.next_event(), SyncReceived)
        assert self.server.accept_sync(self.clock.now)
        self.pump()
        assert isinstance(self.client.next_event(), SyncCompleted)
        assert isinstance(self.server.next_event(), SyncCompleted)

    def control(self) -> str:
        """The client's CONTROL, delivered: the server's one event is that CONTROL."""
        tid = self.client.control(MIXER, CT, b"<x/>", self.clock.now)
        self.pump()
        assert events(self.server) == [ControlReceived(tid, MIXER, CT, b"<x/>")]
        return tid

    def extended(self, timeout: int | None = None) -> str:
        """A CONTROL the server answers 202 (s6.3.2): the client's one event is that 202."""
        tid = self.control()
        self.server.respond(tid, 202, timeout=timeout, now=self.clock.now)
        self.pump()
        assert events(self.client) == [ResponseReceived(tid, 202, None, b"", extended=True)]
        return tid


def events(conn: CfwConnection) -> list[Event]:
    out: list[Event] = []
    while (event := conn.next_event()) is not None:
        out.append(event)
    return out


def wire(data: bytes) -> list[Request | Response]:
    parser = CfwParser()
    parser.receive_data(data)
    out: list[Request | Response] = []
    while not isinstance(item := parser.next_event(), NeedData):
        assert isinstance(item, Request | Response)
        out.append(item)
    return out


def test_sync_negotiates_packages_and_keep_alive() -> None:
    pair = Pair()
    tid = pair.client.sync(pair.clock.now, trans_id="6e5e86f95609")
    pair.pump()
    (received,) = events(pair.server)
    assert received == SyncReceived(tid, "5feb6486792a", ("msc-ivr/1.0", MIXER), 100)
    assert pair.server.state.value == "sync-received"
    pair.server.accept_sync(pair.clock.now)
    answer = pair.server.data_to_send()
    assert answer == (
        b"CFW 6e5e86f95609 200\r\nKeep-Alive: 100\r\nPackages: msc-ivr/1.0,msc-mixer/1.0\r\n"
        b"Supported: msc-example-pkg/1.0\r\n\r\n"
    )
    pair.client.receive_data(answer, pair.clock.now)
    assert events(pair.client) == [
        SyncCompleted(("msc-ivr/1.0", MIXER), ("msc-example-pkg/1.0",), 100)
    ]
    assert pair.client.state is State.OPEN and pair.server.state is State.OPEN
    assert pair.server.keep_alive == 100


def test_no_common_package_is_422_and_sync_may_be_retried() -> None:
    pair = Pair(
        client_config=CfwConfig(packages=("msc-ivr/1.0",), dialog_id="abcd1234"),
        server_config=CfwConfig(packages=(MIXER,)),
    )
    pair.client.sync(pair.clock.now)
    pair.pump()
    events(pair.server)
    assert not pair.server.accept_sync(pair.clock.now)
    pair.pump()
    assert events(pair.client) == [SyncRefused(422, (MIXER,))]
    assert pair.client.state is State.IDLE and pair.server.state is State.IDLE


def test_wrong_dialog_id_is_481_and_closes_both() -> None:
    pair = Pair()
    pair.client.sync(pair.clock.now)
    pair.pump()
    events(pair.server)
    pair.server.reject_sync(481)
    pair.pump()
    assert events(pair.server) == [ChannelClosed("SYNC refused with 481", 481)]
    assert events(pair.client) == [
        SyncRefused(481, ()),
        ChannelClosed("SYNC refused with 481", 481),
    ]
    assert pair.client.closed and pair.server.closed


def test_anything_before_sync_is_403_and_closes() -> None:
    server = CfwConnection(Side.SERVER, CfwConfig(), now=0.0)
    control = Request("101fbbd62c35", (("Control-Package", "msc-ivr/1.0"),), method=Method.CONTROL)
    server.receive_data(serialize(control), 0.0)
    assert wire(server.data_to_send()) == [Response("101fbbd62c35", code=403)]
    assert server.closed
    assert events(server) == [ChannelClosed("CONTROL before the SYNC completed", 403)]


def test_initial_sync_without_dialog_id_is_400() -> None:
    server = CfwConnection(Side.SERVER, CfwConfig(), now=0.0)
    sync = Request("abcd1234", (("Packages", MIXER),), method=Method.SYNC)
    server.receive_data(serialize(sync), 0.0)
    assert wire(server.data_to_send()) == [Response("abcd1234", code=400)]
    assert server.closed


def test_control_200_round_trip() -> None:
    pair = Pair()
    pair.open()
    tid = pair.control()
    pair.server.respond(tid, 200, content_type=CT, body=b"<ok/>")
    pair.pump()
    assert events(pair.client) == [ResponseReceived(tid, 200, CT, b"<ok/>")]
    assert pair.client.get_timer() is not None  # only keep-alive remains
    with pytest.raises(LocalProtocolError):
        pair.server.respond(tid, 200)  # already answered


def test_extended_transaction_with_reports() -> None:
    pair = Pair()
    pair.open()
    tid = pair.extended(10)
    pair.advance(7)
    assert pair.server.report(tid, ReportStatus.UPDATE, pair.clock.now) == 1
    pair.pump()
    assert events(pair.client) == [ReportReceived(tid, 1, ReportStatus.UPDATE, 10, None, b"")]
    assert events(pair.server) == [ResponseReceived(tid, 200, None, b"", method="REPORT", seq=1)]
    pair.advance(7)  # the update reset the client's timer: 14 s after the 202, still alive
    seq = pair.server.report(
        tid, ReportStatus.TERMINATE, pair.clock.now, content_type=CT, body=b"<done/>"
    )
    pair.pump()
    assert seq == 2
    assert events(pair.client) == [
        ReportReceived(tid, 2, ReportStatus.TERMINATE, 10, CT, b"<done/>")
    ]
    with pytest.raises(LocalProtocolError):
        pair.server.report(tid, ReportStatus.UPDATE, pair.clock.now)


def test_report_out_of_sequence_is_406() -> None:
    pair = Pair()
    pair.open()
    tid = pair.extended()
    bad = Request(
        tid, (("Seq", "2"), ("Status", "update"), ("Timeout", "10")), method=Method.REPORT
    )
    pair.client.receive_data(serialize(bad), pair.clock.now)
    assert wire(pair.client.data_to_send()) == [Response(tid, (("Seq", "2"),), code=406)]
    (event,) = events(pair.client)
    assert isinstance(event, BadMessageReceived) and event.status == 406
    # The transaction is over: a further REPORT is for no transaction.
    again = Request(
        tid, (("Seq", "1"), ("Status", "update"), ("Timeout", "10")), method=Method.REPORT
    )
    pair.client.receive_data(serialize(again), pair.clock.now)
    assert wire(pair.client.data_to_send()) == [Response(tid, code=481)]


def test_transaction_timeout_is_an_event() -> None:
    pair = Pair(
        client_config=CfwConfig(dialog_id="abcd1234", transaction_timeout=5.0, keep_alive=None)
    )
    pair.open()
    tid = pair.control()  # the server never answers
    pair.advance(9.9)
    assert events(pair.client) == []
    pair.advance(0.2)
    assert events(pair.client) == [TransactionTimedOut(tid, Method.CONTROL)]
    pair.server.respond(tid, 200)  # too late: a stray response
    pair.pump()
    assert events(pair.client) == [StrayResponse(tid, 200)]


def test_extended_transaction_times_out_without_reports() -> None:
    pair = Pair()
    pair.open()
    tid = pair.extended(12)
    pair.server.close()  # the server dies: no refreshing REPORTs come
    pair.advance(11.9)
    assert events(pair.client) == []
    pair.advance(0.2)
    assert events(pair.client) == [TransactionTimedOut(tid, Method.CONTROL)]


def test_server_refreshes_a_quiet_extended_transaction() -> None:
    pair = Pair()
    pair.open()
    tid = pair.extended(10)
    pair.advance(30)  # s6.3.2.1: empty updates at 80 % of Timeout keep the transaction alive
    reports = events(pair.client)
    assert reports == [
        ReportReceived(tid, n, ReportStatus.UPDATE, 10, None, b"") for n in (1, 2, 3)
    ]
    pair.server.report(tid, ReportStatus.TERMINATE, pair.clock.now)
    pair.pump()
    assert events(pair.client) == [ReportReceived(tid, 4, ReportStatus.TERMINATE, 10, None, b"")]
    with pytest.raises(LocalProtocolError):
        pair.server.respond(tid, 200)  # a 202 cannot be followed by another response


def test_client_may_narrow_its_offer_after_422() -> None:
    pair = Pair(
        client_config=CfwConfig(packages=("msc-ivr/1.0", MIXER), dialog_id="abcd1234"),
        server_config=CfwConfig(packages=(MIXER,)),
    )
    pair.client.sync(pair.clock.now, packages=("msc-ivr/1.0",))
    pair.pump()
    events(pair.server)
    assert not pair.server.accept_sync(pair.clock.now)
    pair.pump()
    assert events(pair.client) == [SyncRefused(422, (MIXER,))]
    pair.client.sync(pair.clock.now, packages=(MIXER,))
    pair.pump()
    events(pair.server)
    assert pair.server.accept_sync(pair.clock.now)
    pair.pump()
    assert events(pair.client) == [SyncCompleted((MIXER,), (), 100)]
    with pytest.raises(LocalProtocolError):
        CfwConnection(Side.CLIENT, CfwConfig(dialog_id="abcd1234"), now=0.0).sync(
            0.0, packages=("msc-other/1.0",)
        )


def test_sync_without_answer_closes_the_channel() -> None:
    client = CfwConnection(Side.CLIENT, CfwConfig(dialog_id="abcd1234"), now=0.0)
    tid = client.sync(0.0)
    assert client.get_timer() == 20.0  # 2 x Transaction-Timeout (s6)
    client.handle_timer(20.0)
    assert events(client) == [
        TransactionTimedOut(tid, Method.SYNC),
        ChannelClosed("no answer to SYNC"),
    ]
    assert client.closed and client.get_timer() is None


def test_keep_alive_flows_and_both_timers_reset() -> None:
    pair = Pair()
    pair.open()
    start = pair.clock.now
    assert pair.client.get_timer() == start + 80  # 80 % of 100 s
    assert pair.server.get_timer() == start + 100
    pair.advance(80)
    # The client sent K-ALIVE at 80 s, the server answered and both restarted their timers.
    assert pair.server.get_timer() == start + 180
    assert pair.client.get_timer() == start + 160
    pair.advance(1000)
    assert events(pair.client) == [] and events(pair.server) == []
    assert pair.client.state is State.OPEN and pair.server.state is State.OPEN


def test_keep_alive_missed_by_the_passive_side() -> None:
    pair = Pair()
    pair.open()
    start = pair.clock.now
    pair.client.close()  # the client falls silent
    pair.advance(99.9)
    assert events(pair.server) == []
    pair.advance(0.2)
    assert events(pair.server) == [KeepAliveMissed(), ChannelClosed("keep-alive missed")]
    assert pair.server.closed
    assert pair.clock.now >= start + 100


def test_keep_alive_missed_by_the_active_side() -> None:
    pair = Pair()
    pair.open()
    pair.client.handle_timer(pair.clock.now + 80)  # K-ALIVE queued, but the server never sees it
    assert wire(pair.client.data_to_send())[0].method == "K-ALIVE"  # type: ignore[union-attr]
    pair.client.handle_timer(pair.clock.now + 100)
    assert events(pair.client) == [KeepAliveMissed(), ChannelClosed("keep-alive missed")]
    assert pair.client.closed


def test_framework_errors_on_an_open_channel() -> None:
    pair = Pair()
    pair.open()
    server = pair.server
    now = pair.clock.now
    unknown = Request(
        "abcd1234", (("Control-Package", "msc-ivr-basic/1.0"),), method=Method.CONTROL
    )
    server.receive_data(serialize(unknown), now)
    assert wire(server.data_to_send()) == [Response("abcd1234", code=420)]
    control = Request("dup12345", (("Control-Package", MIXER),), method=Method.CONTROL)
    server.receive_data(serialize(control) * 2, now)
    assert wire(server.data_to_send()) == [Response("dup12345", code=423)]
    server.receive_data(serialize(Request("meth1234", method="FOO")), now)
    assert wire(server.data_to_send()) == [Response("meth1234", code=405)]
    resync = Request("sync1234", (("Packages", MIXER),), method=Method.SYNC)
    server.receive_data(serialize(resync), now)
    assert wire(server.data_to_send()) == [Response("sync1234", code=421)]
    server.receive_data(b"CFW bad12345 REPORT\r\nSeq: x\r\n\r\n", now)
    assert wire(server.data_to_send()) == [Response("bad12345", code=400)]
    report = Request(
        "none1234", (("Seq", "1"), ("Status", "update"), ("Timeout", "1")), method=Method.REPORT
    )
    server.receive_data(serialize(report), now)
    assert wire(server.data_to_send()) == [Response("none1234", code=481)]
    statuses = [e.status for e in events(server) if isinstance(e, BadMessageReceived)]
    assert statuses == [420, 423, 405, 421, 400, 481]
    assert server.state is State.OPEN
    assert [e for e in events(server) if not isinstance(e, BadMessageReceived)] == []


def test_lost_framing_closes_the_channel() -> None:
    pair = Pair()
    pair.open()
    pair.server.receive_data(b"CFW abcd1234 CONTROL\r\nContent-Length: -1\r\n\r\n", pair.clock.now)
    assert pair.server.closed
    assert isinstance(events(pair.server)[-1], ChannelClosed)


@pytest.mark.parametrize("side", ["server", "client"])
@pytest.mark.parametrize(
    ("raw", "answer"),
    [
        (b"GARBAGE", []),  # not CFW: closed at once, nothing to answer
        (b"CFW %%% CONTROL\r\n", []),  # no transaction id to answer
        (b"CFW abcd1234 CONTROL\r\n" + b"X: y\r\n" * 65, [Response("abcd1234", code=400)]),
    ],
    ids=["not cfw", "unreadable trans-id", "header flood"],
)
def test_unframeable_input_is_answered_400_if_it_can_be_and_closes(
    side: str, raw: bytes, answer: list[Response]
) -> None:
    """No blank line needed: both ends close as soon as the bytes prove the stream broken."""
    pair = Pair()
    pair.open()
    conn = pair.server if side == "server" else pair.client
    conn.receive_data(raw, pair.clock.now)
    assert conn.closed
    assert wire(conn.data_to_send()) == answer
    closed = events(conn)
    assert isinstance(closed[0], BadMessageReceived) and isinstance(closed[-1], ChannelClosed)


@pytest.mark.parametrize("side", ["server", "client"])
def test_a_message_left_unfinished_closes_the_channel(side: str) -> None:
    """A peer that sends a readable start line and never its end (a slow loris keeping the
    channel's buffer) is closed after message_timeout, keep-alives notwithstanding."""
    pair = Pair()
    pair.open()
    conn = pair.server if side == "server" else pair.client
    conn.receive_data(b"CFW abcd1234 CONTROL\r\nControl-Package: msc-mixer/1.0\r\n", pair.clock.now)
    assert not conn.closed
    pair.advance(conn.config.message_timeout - 1)
    conn.receive_data(b"Content-Type: application/msc-mixer+xml\r\n", pair.clock.now)
    states = [conn.state]  # still within the time a message may take
    pair.advance(1)
    assert [*states, conn.state] == [State.OPEN, State.CLOSED]
    assert isinstance(events(conn)[-1], ChannelClosed)


def test_a_finished_message_clears_the_unfinished_deadline() -> None:
    pair = Pair()
    pair.open()
    tid = pair.client.control(MIXER, CT, b"<x/>", pair.clock.now)
    raw = pair.client.data_to_send()
    pair.server.receive_data(raw[:10], pair.clock.now)
    pair.server.receive_data(raw[10:], pair.clock.now)
    assert events(pair.server) == [ControlReceived(tid, MIXER, CT, b"<x/>")]
    pair.server.respond(tid, 200)
    pair.pump()
    pair.advance(3 * pair.server.config.message_timeout)
    assert not pair.server.closed and not pair.client.closed


def test_server_may_send_control_events_to_the_client() -> None:
    pair = Pair()
    pair.open()
    tid = pair.server.control(MIXER, CT, b"<event/>", pair.clock.now)
    pair.pump()
    assert events(pair.client) == [ControlReceived(tid, MIXER, CT, b"<event/>")]
    pair.client.respond(tid, 200)
    pair.pump()
    assert events(pair.server) == [ResponseReceived(tid, 200, None, b"")]


def test_local_misuse_is_a_local_error() -> None:
    client = CfwConnection(Side.CLIENT, CfwConfig(dialog_id="abcd1234"), now=0.0)
    with pytest.raises(LocalProtocolError):
        client.control(MIXER, CT, b"", 0.0)  # not open yet
    with pytest.raises(LocalProtocolError):
        client.accept_sync(0.0)
    with pytest.raises(LocalProtocolError):
        CfwConnection(Side.CLIENT, CfwConfig(), now=0.0)  # no cfw-id
    with pytest.raises(LocalProtocolError):
        CfwConfig(keep_alive=601)
    client.sync(0.0)
    with pytest.raises(LocalProtocolError):
        client.sync(0.0)  # no transition SYNC_SENT --send-sync-->


def test_transition_table_is_the_only_way() -> None:
    assert (Side.SERVER, State.IDLE, Trigger.SEND_SYNC) not in TRANSITIONS
    assert all(target in State for target in TRANSITIONS.values())
    assert not any(state is State.CLOSED for (_, state, _) in TRANSITIONS)


def test_package_matching_accepts_unversioned_names() -> None:
    assert package_matches("msc-mixer", [MIXER])
    assert package_matches(MIXER, [MIXER])
    assert not package_matches("msc-mixer/2.0", [MIXER])
    assert not package_matches("msc-ivr", [MIXER])


# ----------------------------------------------------------------- fuzzing the machines
_VALID_STREAM = [
    b"CFW 6e5e86f95609 SYNC\r\nDialog-ID: 5feb6486792a\r\nKeep-Alive: 100\r\n"
    b"Packages: msc-mixer/1.0\r\n\r\n",
    b"CFW 518ba6047880 K-ALIVE\r\n\r\n",
    b"CFW 3032e5fb79a1 CONTROL\r\nControl-Package: msc-mixer/1.0\r\n"
    b"Content-Type: application/msc-mixer+xml\r\nContent-Length: 4\r\n\r\n<x/>",
    b"CFW 3032e5fb79a1 REPORT\r\nSeq: 1\r\nStatus: update\r\nTimeout: 10\r\n\r\n",
    b"CFW 3032e5fb79a1 200\r\n\r\n",
    b"CFW 3032e5fb79a1 202\r\nTimeout: 10\r\n\r\n",
]


def test_sync_answer_after_the_peer_broke_the_channel_is_a_no_op() -> None:
    # A client pipelining K-ALIVE right behind its SYNC gets 403 and the channel closes while
    # SyncReceived is still queued: answering it then must not blow up the application
    # (found by the fuzz test below).
    for answer in ("accept", "reject"):
        conn = CfwConnection(Side.SERVER, CfwConfig(), now=0.0)
        conn.receive_data(
            b"CFW 6e5e86f95609 SYNC\r\nDialog-ID: 5feb6486792a\r\nKeep-Alive: 100\r\n"
            b"Packages: msc-mixer/1.0\r\n\r\nCFW 518ba6047880 K-ALIVE\r\n\r\n",
            0.0,
        )
        assert isinstance(conn.next_event(), SyncReceived)
        assert conn.state is State.CLOSED
        if answer == "accept":
            assert conn.accept_sync(0.0) is False
        else:
            conn.reject_sync()
        answers = list(wire(conn.data_to_send()))
        assert [a.code for a in answers if isinstance(a, Response)] == [403]


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.sampled_from(_VALID_STREAM), min_size=1, max_size=6),
    st.lists(st.tuples(st.integers(0, 600), st.binary(max_size=3)), max_size=3),
    st.sampled_from(list(Side)),
    st.integers(1, 50),
)
def test_fuzz_any_stream_gives_events_and_valid_answers(
    chunks: list[bytes], edits: list[tuple[int, bytes]], side: Side, step: int
) -> None:
    data = bytearray(b"".join(chunks))
    for position, replacement in edits:
        at = position % (len(data) + 1)
        data[at : at + len(replacement)] = replacement
    config = CfwConfig(dialog_id="abcd1234") if side is Side.CLIENT else CfwConfig()
    conn = CfwConnection(side, config, now=0.0)
    if side is Side.CLIENT:
        conn.sync(0.0)
        conn.data_to_send()
    now = 0.0
    for i in range(0, len(data), step):
        conn.receive_data(bytes(data[i : i + step]), now)
        while (event := conn.next_event()) is not None:
            if isinstance(event, SyncReceived):
                conn.accept_sync(now)
            elif isinstance(event, ControlReceived):
                conn.respond(event.trans_id, 200)
        now += 1.0
        conn.handle_timer(now)
    # Everything we wrote in answer is itself a valid CFW stream of responses and K-ALIVEs.
    for message in wire(conn.data_to_send()):
        assert isinstance(message, Response) or message.method == Method.K_ALIVE
