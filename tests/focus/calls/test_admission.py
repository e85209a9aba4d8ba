"""Who may dial in, and with which SIP status the others are refused (RFC 4579 s5.3)."""

from __future__ import annotations

from focus.calls.admission import admit, same_aor
from focus.xcon.model import (
    AllowedUsersList,
    ConferenceDescription,
    ConferenceInfo,
    ConferenceState,
    DenyUsersList,
    Endpoint,
    JoinHandling,
    Target,
    UriEntry,
    Uris,
    User,
    UserAdmissionPolicy,
    Users,
)

ALICE = "sip:alice@127.0.0.1:5062"


def conf(
    *,
    users: Users | None = None,
    limit: int | None = None,
    passwords: tuple[str, ...] = (),
    locked: bool | None = None,
) -> ConferenceInfo:
    uris = Uris(entries=(UriEntry(uri="sip:conf1@localhost", conference_passwords=passwords),))
    return ConferenceInfo(
        entity="xcon:conf1@localhost",
        conference_description=ConferenceDescription(conf_uris=uris, maximum_user_count=limit),
        conference_state=ConferenceState(locked=locked) if locked is not None else None,
        users=users,
    )


def status(info: ConferenceInfo, caller: str = ALICE, **kw: object) -> int | None:
    refusal = admit(info, caller, **kw)  # type: ignore[arg-type]
    return None if refusal is None else refusal.status


def test_open_conference_admits_anyone() -> None:
    assert status(conf()) is None
    assert status(conf(users=Users(join_handling=JoinHandling.ALLOW))) is None


def test_deny_list_and_lock_and_block_are_403() -> None:
    denied = Users(deny_users_list=DenyUsersList(targets=(Target(uri="sip:alice@127.0.0.1"),)))
    assert status(conf(users=denied)) == 403
    assert status(conf(users=denied), "sip:bob@127.0.0.1") is None
    assert status(conf(locked=True)) == 403
    assert status(conf(users=Users(join_handling=JoinHandling.BLOCK))) == 403


def test_allowed_list_gates_closed_and_confirm_conferences() -> None:
    allowed = AllowedUsersList(targets=(Target(uri="sip:alice@127.0.0.1", method="dial-in"),))
    closed = Users(
        user_admission_policy=UserAdmissionPolicy.CLOSED_AUTHENTICATED, allowed_users_list=allowed
    )
    assert status(conf(users=closed)) is None
    assert status(conf(users=closed), "sip:mallory@127.0.0.1") == 403
    confirm = Users(join_handling=JoinHandling.CONFIRM, allowed_users_list=allowed)
    assert status(conf(users=confirm)) is None
    assert status(conf(users=confirm), "sip:mallory@127.0.0.1") == 403


def test_full_conference_is_486_but_admits_its_own_users() -> None:
    users = Users(
        users=(User(entity="xcon-userid:u1@localhost", endpoints=(Endpoint(entity=ALICE),)),)
    )
    assert status(conf(users=users, limit=1), "sip:bob@127.0.0.1") == 486
    assert status(conf(users=users, limit=1)) is None
    assert status(conf(users=users, limit=2), "sip:bob@127.0.0.1") is None


def test_password_missing_is_a_challenge_and_wrong_is_403() -> None:
    info = conf(passwords=("s3cret",))
    refusal = admit(info, ALICE)
    assert refusal is not None and refusal.status == 401 and refusal.challenge
    assert status(info, password="nope") == 403
    assert status(info, password="s3cret") is None
    assert status(info, authenticated=True) is None


def test_same_aor_ignores_port_parameters_and_case() -> None:
    assert same_aor("sip:Alice@127.0.0.1:5062;transport=tcp", "sip:alice@127.0.0.1")
    assert same_aor("<sips:alice@example.org>", "sip:alice@example.org")
    assert not same_aor("sip:alice@example.org", "sip:bob@example.org")
