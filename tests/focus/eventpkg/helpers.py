"""Shared test data for the event package: schemas and a realistic conference."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

from lxml import etree

from focus.xcon.model import (
    AllowedUsersList,
    Anonymity,
    AvailableMedia,
    CallInfo,
    ConferenceDescription,
    ConferenceInfo,
    ConferenceMedium,
    ConferenceState,
    Controls,
    DenyUsersList,
    Endpoint,
    EndpointStatus,
    Execution,
    FloorInformation,
    JoinHandling,
    JoiningMethod,
    Media,
    MediaStatus,
    Role,
    SipDialogId,
    Target,
    TargetMethod,
    UriEntry,
    Uris,
    User,
    Users,
)
from tests.paths import ROOT

XCON_SCHEMA = ROOT / "focus" / "xcon" / "schema"
EVENT_SCHEMA = ROOT / "focus" / "eventpkg" / "schema"
VECTORS = ROOT / "tests" / "vectors" / "eventpkg"
_PARSER = etree.XMLParser(no_network=True, resolve_entities=False, load_dtd=False)

RFC4575_XSD = etree.XMLSchema(etree.parse(str(XCON_SCHEMA / "conference-info.xsd"), _PARSER))
RFC6501_RNG = etree.RelaxNG(etree.parse(str(XCON_SCHEMA / "xcon-conference-info.rng"), _PARSER))
RFC6502_XSD = etree.XMLSchema(
    etree.parse(str(EVENT_SCHEMA / "xcon-conference-info-diff.xsd"), _PARSER)
)

CONF = "xcon:conf42@example.com"
ALICE = "xcon-userid:alice@example.com"
BOB = "xcon-userid:bob@example.com"
CAROL = "xcon-userid:carol@example.com"
DAVE = "xcon-userid:dave@example.com"


def valid(schema: etree._Validator, data: bytes) -> tuple[bool, str]:
    ok = schema.validate(etree.fromstring(data, _PARSER))
    return ok, str(schema.error_log)


def tree(data: bytes) -> object:
    """A document as nested tuples of Clark names, attributes and texts: equal for
    documents that differ only in namespace prefixes."""

    def walk(el: etree._Element) -> object:
        return (
            el.tag,
            sorted((str(k), str(v)) for k, v in el.attrib.items()),
            el.text or "",
            el.tail or "",
            [walk(c) for c in el],
        )

    return walk(etree.fromstring(data, _PARSER))


def endpoint(contact: str, *, muted: bool = False, n: int = 1) -> Endpoint:
    return Endpoint(
        entity=contact,
        display_text="desk phone",
        status=EndpointStatus.CONNECTED,
        joining_method=JoiningMethod.DIALED_IN,
        joining_info=Execution(when=datetime(2026, 11, 22, 1, 0, tzinfo=UTC), by=contact),
        media=(
            Media(
                id=f"{n}",
                type="audio",
                label="11",
                src_id=f"{1000 + n}",
                status=MediaStatus.RECVONLY if muted else MediaStatus.SENDRECV,
            ),
        ),
        call_info=CallInfo(sip=SipDialogId(call_id=f"call{n}", from_tag="a", to_tag="b")),
    )


def user(entity: str, name: str, *roles: Role, n: int = 1, **kw: object) -> User:
    contact = f"sip:{name.lower()}@pc{n}.example.com"
    return User(
        entity=entity,
        display_text=name,
        associated_aors=Uris(entries=(UriEntry(uri=f"sip:{name.lower()}@example.com"),)),
        roles=roles or (Role.PARTICIPANT,),
        endpoints=(endpoint(contact, n=n),),
        **kw,  # type: ignore[arg-type]
    )


def conference(*users: User) -> ConferenceInfo:
    """A conference object as the core holds it (XCON elements included)."""
    return ConferenceInfo(
        entity=CONF,
        conference_description=ConferenceDescription(
            display_text="Weekly sync",
            subject="Roadmap",
            conf_uris=Uris(
                entries=(
                    UriEntry(
                        uri="sip:conf42@example.com",
                        purpose="participation",
                        conference_passwords=("s3cret",),
                    ),
                )
            ),
            maximum_user_count=10,
            available_media=AvailableMedia(
                entries=(
                    ConferenceMedium(
                        label="11",
                        type="audio",
                        status=MediaStatus.SENDRECV,
                        controls=Controls(mute=False),
                    ),
                )
            ),
            allow_sidebars=True,
        ),
        conference_state=ConferenceState(
            user_count=len(users),
            active=True,
            locked=False,
            allow_conference_event_subscription=True,
        ),
        users=Users(
            users=users,
            join_handling=JoinHandling.ALLOW,
            allowed_users_list=AllowedUsersList(
                targets=(Target(uri="sip:eve@example.com", method=TargetMethod.DIAL_OUT),)
            ),
            deny_users_list=DenyUsersList(targets=(Target(uri="sip:mallory@example.com"),)),
        ),
        floor_information=FloorInformation(conference_id=42, allow_floor_events=True),
    )


def standard() -> ConferenceInfo:
    return conference(
        user(ALICE, "Alice", Role.MODERATOR, n=1),
        user(BOB, "Bob", n=2),
        user(CAROL, "Carol", n=3, provide_anonymity=Anonymity.PRIVATE),
    )


def with_users(conf: ConferenceInfo, *users: User) -> ConferenceInfo:
    assert conf.users is not None
    return replace(conf, users=replace(conf.users, users=users))
