"""Admission of a dial-in caller to a conference (RFC 4579 s5.2/s5.3, RFC 6501 s4.6).

Pure: the conference document and what the caller presented in, a verdict out. The SIP
status of each refusal follows RFC 3261 s21: 403 for a policy refusal, 486 for a full
conference, 401 when a password is needed and none was given (the focus then challenges).
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass

from focus.core.errors import CoreError, ErrorKind
from focus.sip.message import Request
from focus.sip.uri import SipURI, parse_uri
from focus.xcon.model import ConferenceInfo, JoinHandling, UserAdmissionPolicy, Users

__all__ = [
    "WRONG_PASSWORD",
    "Refusal",
    "admit",
    "aor_of",
    "conference_passwords",
    "dialog_header",
    "parse_target",
    "refusal_for",
    "same_aor",
]


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why a caller may not join, as the SIP answer to give. ``challenge`` asks for a
    401 with a digest challenge (the caller may retry with the conference password);
    ``bad_password``: she gave a wrong one (a failed authentication for the lock-out)."""

    status: int
    reason: str
    challenge: bool = False
    headers: tuple[tuple[str, str], ...] = ()  # e.g. Min-SE with a 422 (RFC 4028 s6)
    bad_password: bool = False


#: A wrong conference password (URI parameter or digest).
WRONG_PASSWORD = Refusal(403, "Forbidden - wrong conference password", bad_password=True)


def refusal_for(exc: CoreError) -> Refusal:
    """The SIP answer to a call the core refused (RFC 3261 s21): the one place core errors
    become SIP statuses."""
    kind = exc.kind
    if kind is ErrorKind.RESOURCES_EXHAUSTED:
        return Refusal(486, f"Busy Here - {exc}")
    if kind is ErrorKind.FORBIDDEN:
        return Refusal(403, f"Forbidden - {exc}")
    if kind is ErrorKind.NOT_FOUND:
        return Refusal(404, f"Not Found - {exc}")
    return Refusal(500, f"Server Internal Error - {exc}")


def aor_of(request: Request) -> str:
    """The caller's address of record: the From URI without parameters."""
    uri = request.from_.uri
    if isinstance(uri, SipURI):
        return str(SipURI(uri.host, user=uri.user, port=uri.port, scheme=uri.scheme))
    return str(uri)


def dialog_header(request: Request, name: str) -> tuple[str, str, str] | None:
    """(call-id, to-tag, from-tag) of a Join (RFC 3911) or Replaces (RFC 3891) header."""
    value = request.headers.get(name)
    if value is None:
        return None
    call_id, _, rest = value.strip().partition(";")
    params: dict[str, str] = {}
    for item in rest.split(";"):
        key, _, val = item.strip().partition("=")
        params[key.strip().lower()] = val.strip()
    return call_id.strip(), params.get("to-tag", ""), params.get("from-tag", "")


def parse_target(text: str) -> SipURI:
    """A dial-out target as a SIP URI (raises ValueError otherwise)."""
    uri = parse_uri(text)
    if not isinstance(uri, SipURI):
        raise ValueError(f"not a SIP URI: {text}")
    return uri


def same_aor(a: str, b: str) -> bool:
    """Two SIP URIs name the same user: scheme, user and host compared, parameters not."""
    return _aor(a) == _aor(b)


def _aor(uri: str) -> str:
    text = uri.strip().strip("<>").lower()
    text = text.split(";", 1)[0].split("?", 1)[0]
    scheme, _, rest = text.partition(":")
    if scheme == "sips":
        scheme = "sip"
    user, at, host = rest.rpartition("@")
    host = host.split(":", 1)[0] if not host.startswith("[") else host
    return f"{scheme}:{user}{at}{host}"


def conference_passwords(info: ConferenceInfo) -> tuple[str, ...]:
    """Every conference password of the conference's conf-uris (RFC 6501 s4.2.6)."""
    desc = info.conference_description
    if desc is None or desc.conf_uris is None:
        return ()
    return tuple(p for e in desc.conf_uris.entries for p in e.conference_passwords)


def _is_user(users: Users, caller: str) -> bool:
    return any(
        (u.entity is not None and same_aor(u.entity, caller))
        or any(e.entity is not None and same_aor(e.entity, caller) for e in u.endpoints)
        for u in users.users
    )


def admit(
    info: ConferenceInfo,
    caller: str,
    *,
    password: str | None = None,
    authenticated: bool = False,
) -> Refusal | None:
    """``None`` if ``caller`` (the From AOR) may dial in, else the :class:`Refusal`.

    ``password`` is a conference password the caller gave (URI parameter), ``authenticated``
    says digest credentials with a conference password were verified.
    """
    users = info.users or Users()
    if users.deny_users_list is not None and any(
        same_aor(t.uri, caller) for t in users.deny_users_list.targets
    ):
        return Refusal(403, "Forbidden - on the conference's deny list")
    state = info.conference_state
    if state is not None and state.locked:
        return Refusal(403, "Forbidden - the conference is locked")
    listed = users.allowed_users_list is not None and any(
        same_aor(t.uri, caller) for t in users.allowed_users_list.targets
    )
    invited = listed or _is_user(users, caller)
    handling = users.join_handling
    if handling == JoinHandling.BLOCK:
        return Refusal(403, "Forbidden - the conference admits nobody (join-handling block)")
    if handling in (JoinHandling.CONFIRM, JoinHandling.DIRECTED_OPERATOR) and not invited:
        # Nobody to confirm a join synchronously: only invited users get in.
        return Refusal(403, f"Forbidden - join-handling {handling} admits invited users only")
    if users.user_admission_policy == UserAdmissionPolicy.CLOSED_AUTHENTICATED and not invited:
        return Refusal(403, "Forbidden - not on the allowed-users-list")
    passwords = conference_passwords(info)
    needs_password = bool(passwords) or handling == JoinHandling.AUTHENTICATE
    if needs_password and not authenticated:
        if password is None:
            return Refusal(401, "Unauthorized - conference password required", challenge=True)
        if not any(hmac.compare_digest(password.encode(), p.encode()) for p in passwords):
            return WRONG_PASSWORD
    desc = info.conference_description
    limit = desc.maximum_user_count if desc is not None else None
    if limit is not None and not _is_user(users, caller) and len(users.users) >= limit:
        return Refusal(486, f"Busy Here - the conference is full ({limit} users)")
    return None
