"""The msc-mixer/1.0 executor: every RFC 6505 s4.6 status it gives, ownership, events."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mediactrl.mixer import model as m
from mediactrl.mixer.codec import decode, encode
from mediactrl.mixer.model import Direction, MixerStatus
from mediactrl.server.mixer_service import (
    FORBIDDEN,
    BackendCapabilities,
    ControlOnlyBackend,
    MixerService,
    MixerServiceConfig,
    Notice,
)

AS1, AS2 = "as1cfwid0001", "as2cfwid0002"
ALICE, BOB, CAROL = "a1:b1", "a2:b2", "a3:b3"


def service(**caps: object) -> MixerService:
    backend = ControlOnlyBackend(caps=BackendCapabilities(**caps))  # type: ignore[arg-type]
    for connection in (ALICE, BOB, CAROL):
        backend.add_connection(connection)
    return MixerService(backend)


def status(svc: MixerService, request: m.MixerMessage, owner: str = AS1) -> int:
    outcome = svc.execute(owner, request)
    if outcome.answer is None:
        return outcome.cfw_status
    return outcome.answer.status


def test_create_join_modify_unjoin_destroy() -> None:
    svc = service()
    assert status(svc, m.CreateConference("c1")) == 200
    assert status(svc, m.CreateConference("c1")) == MixerStatus.CONFERENCE_ALREADY_EXISTS
    assert status(svc, m.Join(ALICE, "c1")) == 200
    assert status(svc, m.Join("c1", ALICE)) == MixerStatus.ALREADY_JOINED
    assert svc.join_streams(ALICE, "c1") == (m.Stream("audio"),)
    mute = m.ModifyJoin(ALICE, "c1", (m.Stream("audio", direction=Direction.RECVONLY),))
    assert status(svc, mute) == 200
    # Direction is relative to id1 (s4.2.2.5): seen from the conference it is sendonly.
    assert svc.join_streams("c1", ALICE) == (m.Stream("audio", direction=Direction.SENDONLY),)
    assert status(svc, m.Unjoin(ALICE, "c1")) == 200
    assert status(svc, m.Unjoin(ALICE, "c1")) == MixerStatus.NOT_JOINED
    assert status(svc, m.ModifyJoin(ALICE, "c1", mute.streams)) == MixerStatus.NOT_JOINED
    assert status(svc, m.DestroyConference("c1")) == 200
    assert status(svc, m.DestroyConference("c1")) == MixerStatus.CONFERENCE_DOES_NOT_EXIST


def test_unknown_entities() -> None:
    svc = service()
    svc.execute(AS1, m.CreateConference("c1"))
    assert status(svc, m.Join("nope:nope", "c1")) == MixerStatus.CONNECTION_DOES_NOT_EXIST
    assert status(svc, m.Join(ALICE, "nosuch")) == MixerStatus.CONFERENCE_DOES_NOT_EXIST
    assert status(svc, m.ModifyConference("nosuch", audio_mixing=m.AudioMixing())) == 406
    assert status(svc, m.Audit(conferenceid="nosuch")) == 406
    assert status(svc, m.Join("c1", "c1")) == MixerStatus.JOIN_OPERATION_FAILED
    assert status(svc, m.Join(ALICE, ALICE)) == 200  # echo (RFC 7058 s6.1.1)
    assert svc.connection_closed(ALICE) == (
        Notice(AS1, m.Event(m.UnjoinNotify(2, ALICE, ALICE, "connection terminated"))),
    )
    assert status(svc, m.CreateConference("bad:id")) == MixerStatus.SYNTAX_ERROR


def test_connection_id_from_either_end() -> None:
    """RFC 6230 A.1: the AS names the dialog local:remote, which is the MS's remote:local."""
    svc = service()
    svc.execute(AS1, m.CreateConference("c1"))
    assert status(svc, m.Join("b1:a1", "c1")) == 200
    notices = svc.connection_closed(ALICE)
    assert notices == (
        Notice(AS1, m.Event(m.UnjoinNotify(2, "b1:a1", "c1", "connection terminated"))),
    )
    assert svc.participants("c1") == ()


def test_stream_rules() -> None:
    svc = service()
    svc.execute(AS1, m.CreateConference("c1"))
    both = (m.Stream("audio"), m.Stream("audio", direction=Direction.SENDONLY))
    assert status(svc, m.Join(ALICE, "c1", both)) == MixerStatus.INCOMPATIBLE_STREAM_CONFIGURATION
    video = (m.Stream("video"),)
    assert status(svc, m.Join(ALICE, "c1", video)) == 422
    split = (
        m.Stream(
            "audio",
            direction=Direction.SENDONLY,
            volume=m.Volume(m.VolumeControlType.SETGAIN, "-3"),
        ),
        m.Stream("audio", direction=Direction.RECVONLY),
    )
    assert status(svc, m.Join(ALICE, "c1", split)) == 200
    # modifyjoin replaces the streams of the medium it names (s4.2.2.3).
    only_send = (m.Stream("audio", direction=Direction.SENDONLY),)
    assert status(svc, m.ModifyJoin(ALICE, "c1", only_send)) == 200
    assert svc.join_streams(ALICE, "c1") == only_send
    # A partial unjoin of a medium not in the join is a conflict; nothing changes.
    assert status(svc, m.Unjoin(ALICE, "c1", (m.Stream("audio", label="x"),))) == 407
    assert svc.join_streams(ALICE, "c1") == only_send


def test_partial_unjoin_keeps_other_media() -> None:
    svc = MixerService(ControlOnlyBackend(accept_any_connection=True))
    svc.execute(AS1, m.CreateConference("v1"))
    streams = (m.Stream("audio"), m.Stream("video"))
    assert status(svc, m.Join(ALICE, "v1", streams)) == 200
    outcome = svc.execute(AS1, m.Unjoin(ALICE, "v1", (m.Stream("video"),)))
    assert outcome.answer is not None
    assert outcome.answer.status == 200
    assert outcome.notices == ()
    assert svc.join_streams(ALICE, "v1") == (m.Stream("audio"),)
    outcome = svc.execute(AS1, m.Unjoin(ALICE, "v1", (m.Stream("audio"),)))
    assert outcome.notices == (Notice(AS1, m.Event(m.UnjoinNotify(0, ALICE, "v1"))),)


def test_capabilities_refusals() -> None:
    svc = service(max_participants=2, connection_joins=False, conference_joins=False)
    assert status(svc, m.Join(ALICE, ALICE)) == MixerStatus.MIXING_CONNECTIONS_UNSUPPORTED
    assert status(svc, m.CreateConference("big", reserved_talkers=2, reserved_listeners=1)) == 420
    controller = m.AudioMixing(m.AudioMixType.CONTROLLER)
    assert status(svc, m.CreateConference("x1", audio_mixing=controller)) == 421
    layouts = (m.VideoLayout(m.VideoLayoutKind.SINGLE_VIEW),)
    assert status(svc, m.CreateConference("x1", video_layouts=layouts)) == 423
    switch = m.VideoSwitch(m.VideoSwitchPolicy.VAS)
    assert status(svc, m.CreateConference("x1", video_switch=switch)) == 424
    h264 = (m.Codec("video", "H264"),)
    assert status(svc, m.CreateConference("x1", codecs=h264)) == 425
    assert status(svc, m.CreateConference("x1", codecs=(m.Codec("audio", "pcmu"),))) == 200
    assert status(svc, m.ModifyConference("x1", audio_mixing=controller)) == 421
    assert status(svc, m.CreateConference("x2")) == 200
    assert status(svc, m.Join(ALICE, BOB)) == MixerStatus.MIXING_CONNECTIONS_UNSUPPORTED
    assert status(svc, m.Join("x1", "x2")) == MixerStatus.MIXING_CONFERENCES_UNSUPPORTED
    assert status(svc, m.Join(ALICE, "x1")) == 200
    assert status(svc, m.Join(BOB, "x1")) == 200
    assert status(svc, m.Join(CAROL, "x1")) == MixerStatus.CONFERENCE_FULL
    # Nothing of the refused requests was created.
    assert svc.conferences_of(AS1) == ("x1", "x2")


def test_owners_are_isolated() -> None:
    """RFC 7058 s8: audits show only one's own mixers; touching another's is a CFW 403."""
    svc = service()
    svc.execute(AS1, m.CreateConference("c1"))
    svc.execute(AS1, m.Join(ALICE, "c1"))
    svc.execute(AS2, m.Join(BOB, CAROL))
    assert status(svc, m.Join(BOB, "c1"), AS2) == FORBIDDEN
    assert status(svc, m.DestroyConference("c1"), AS2) == FORBIDDEN
    assert status(svc, m.Unjoin(ALICE, "c1"), AS2) == FORBIDDEN
    assert status(svc, m.Unjoin(BOB, CAROL), AS1) == FORBIDDEN
    audit1 = svc.execute(AS1, m.Audit()).answer
    audit2 = svc.execute(AS2, m.Audit()).answer
    assert isinstance(audit1, m.AuditResponse)
    assert isinstance(audit2, m.AuditResponse)
    assert audit1.mixers == m.Mixers(
        (m.ConferenceAudit("c1", participants=(ALICE,)),), (m.JoinAudit(ALICE, "c1"),)
    )
    assert audit2.mixers == m.Mixers((), (m.JoinAudit(BOB, CAROL),))
    shared = MixerService(svc.backend, MixerServiceConfig(allow_cross_owner=True))
    assert status(shared, m.CreateConference("c9"), AS1) == 200
    assert status(shared, m.Join(BOB, "c9"), AS2) == 200


def test_conference_ids_are_scoped_to_their_channel() -> None:
    """RFC 6505 s7: two channels that both pick "conf1" each get their own; neither sees the
    other's, and a third channel naming it gets 403 whichever it means."""
    svc = service()
    assert status(svc, m.CreateConference("conf1"), AS1) == 200
    assert status(svc, m.CreateConference("conf1"), AS2) == 200
    assert status(svc, m.CreateConference("conf1"), AS2) == MixerStatus.CONFERENCE_ALREADY_EXISTS
    assert status(svc, m.Join(ALICE, "conf1"), AS1) == 200
    assert status(svc, m.Join(BOB, "conf1"), AS2) == 200
    key1, key2 = svc.backend_id(AS1, "conf1"), svc.backend_id(AS2, "conf1")
    assert key1 == "conf1" and key2 is not None and key2 != key1
    assert svc.participants(key1) == (ALICE,) and svc.participants(key2) == (BOB,)
    for owner, who in ((AS1, ALICE), (AS2, BOB)):
        audit = svc.execute(owner, m.Audit(capabilities=False)).answer
        assert isinstance(audit, m.AuditResponse)
        assert audit.mixers == m.Mixers(
            (m.ConferenceAudit("conf1", participants=(who,)),), (m.JoinAudit(who, "conf1"),)
        )
    third = "as3cfwid0003"
    assert status(svc, m.DestroyConference("conf1"), third) == FORBIDDEN
    assert status(svc, m.Join(CAROL, "conf1"), third) == FORBIDDEN
    # Events carry the owner's own name for its conference.
    svc.execute(AS2, m.ModifyConference("conf1", subscribe=m.Subscribe(m.ActiveTalkersSub(1))))
    assert svc.active_talkers(key2, [BOB], None) == (
        Notice(AS2, m.Event(m.ActiveTalkersNotify("conf1", (m.ActiveTalker(connectionid=BOB),)))),
    )
    outcome = svc.execute(AS2, m.DestroyConference("conf1"))
    assert [n.owner for n in outcome.notices] == [AS2, AS2]
    assert svc.conferences_of(AS1) == ("conf1",) and svc.conferences_of(AS2) == ()


def test_destroy_unjoins_everyone_then_exits() -> None:
    svc = service()
    svc.execute(AS1, m.CreateConference("main"))
    svc.execute(AS1, m.CreateConference("side"))
    svc.execute(AS1, m.Join(ALICE, "main"))
    svc.execute(AS1, m.Join("side", "main", (m.Stream("audio", direction=Direction.RECVONLY),)))
    outcome = svc.execute(AS1, m.DestroyConference("main"))
    assert [type(n.event.notification).__name__ for n in outcome.notices] == [
        "UnjoinNotify",
        "UnjoinNotify",
        "ConferenceExit",
    ]
    assert outcome.notices[-1].event == m.Event(m.ConferenceExit("main", 0, "conference destroyed"))
    assert svc.participants("side") == ()
    backend = svc.backend
    assert isinstance(backend, ControlOnlyBackend)
    assert backend.joins == {}
    assert set(backend.conferences) == {"side"}


def test_audit_variants_and_wire_bodies() -> None:
    svc = service()
    svc.execute(AS1, m.CreateConference("c1", codecs=(m.Codec("audio", "PCMU"),)))
    only_caps = svc.execute(AS1, m.Audit(mixers=False)).answer
    assert only_caps == m.AuditResponse(
        200, capabilities=m.Capabilities(BackendCapabilities().codecs)
    )
    one = svc.execute(AS1, m.Audit(capabilities=False, conferenceid="c1"))
    assert decode(one.body()) == m.AuditResponse(
        200, mixers=m.Mixers((m.ConferenceAudit("c1", (m.Codec("audio", "PCMU"),)),))
    )


def test_bodies_that_are_not_requests() -> None:
    svc = service()
    outcome = svc.handle_body(AS1, encode(m.Response(200)))
    assert outcome.answer is not None
    assert outcome.answer.status == 400
    outcome = svc.handle_body(AS1, b"<?xml version='1.0'?><!DOCTYPE x []><x/>")
    assert outcome.answer is not None
    assert outcome.answer.status == 400
    assert outcome.answer.reason


@pytest.mark.parametrize("interval", [1, 5])
def test_active_talkers_interval(interval: int) -> None:
    svc = service()
    sub = m.Subscribe(m.ActiveTalkersSub(interval))
    svc.execute(AS1, m.CreateConference("t1", subscribe=sub))
    assert len(svc.active_talkers("t1", [ALICE], now=100.0)) == 1
    assert svc.active_talkers("t1", [ALICE], now=100.0 + interval - 0.5) == ()
    assert len(svc.active_talkers("t1", [ALICE], now=100.0 + interval)) == 1
    svc.execute(AS1, m.ModifyConference("t1", subscribe=m.Subscribe()))
    assert svc.active_talkers("t1", [ALICE], now=1000.0) == ()


# ----------------------------------------------------------------- properties
ENTITIES = st.sampled_from(["c1", "c2", ALICE, BOB, "zz:zz", "nosuch"])
STREAMS = st.lists(
    st.builds(
        m.Stream,
        media=st.sampled_from(["audio", "video"]),
        direction=st.sampled_from(list(Direction)),
    ),
    max_size=3,
).map(tuple)
REQUESTS = st.one_of(
    st.builds(m.CreateConference, conferenceid=st.sampled_from(["c1", "c2", None])),
    st.builds(m.DestroyConference, conferenceid=ENTITIES),
    st.builds(m.ModifyConference, conferenceid=ENTITIES, audio_mixing=st.just(m.AudioMixing())),
    st.builds(m.Join, id1=ENTITIES, id2=ENTITIES, streams=STREAMS),
    st.builds(m.ModifyJoin, id1=ENTITIES, id2=ENTITIES, streams=STREAMS),
    st.builds(m.Unjoin, id1=ENTITIES, id2=ENTITIES, streams=STREAMS),
    st.builds(m.Audit, conferenceid=st.none() | ENTITIES),
)
VALID_STATUSES = {int(s) for s in MixerStatus}


@settings(max_examples=80, deadline=None)
@given(steps=st.lists(st.tuples(st.sampled_from([AS1, AS2]), REQUESTS), max_size=25))
def test_random_requests_keep_registry_and_media_plane_equal(
    steps: list[tuple[str, m.MixerMessage]],
) -> None:
    backend = ControlOnlyBackend(accept_any_connection=False)
    for connection in (ALICE, BOB):
        backend.add_connection(connection)
    svc = MixerService(backend)
    for owner, request in steps:
        outcome = svc.execute(owner, request)
        if outcome.answer is None:
            assert outcome.cfw_status == FORBIDDEN
        else:
            assert outcome.answer.status in VALID_STATUSES
            decode(outcome.body())  # every answer is a valid msc-mixer document
        # The media plane holds exactly what the registry says was done.
        keys = {
            svc.backend_id(channel, name): channel
            for channel in (AS1, AS2)
            for name in svc.conferences_of(channel)
        }
        assert set(backend.conferences) == set(keys)
        for (id1, id2), streams in backend.joins.items():
            assert svc.join_streams(id1, id2) == streams
        for conference, channel in keys.items():
            assert conference is not None
            for named in svc.participants(conference):
                member = svc.backend_id(channel, named) or named
                assert {(member, conference), (conference, member)} & set(backend.joins)


@settings(max_examples=60, deadline=None)
@given(body=st.binary(max_size=300) | st.text(max_size=300).map(str.encode))
def test_any_body_gets_an_answer(body: bytes) -> None:
    outcome = service().handle_body(AS1, body)
    assert outcome.answer is not None
    assert outcome.answer.status in VALID_STATUSES
