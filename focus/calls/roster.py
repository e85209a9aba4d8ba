"""Reading the core's conference documents for the call flows (pure): which user a caller
is, which endpoint is hers, what audio status the core asks for, which targets a conference
lists, and whether the factory made it."""

from __future__ import annotations

from focus.calls.admission import same_aor
from focus.core.state import ConferenceObject
from focus.xcon.model import ConferenceInfo, TargetMethod, User

__all__ = [
    "AD_HOC_MARK",
    "endpoint_entity",
    "is_ad_hoc",
    "media_status",
    "targets",
    "user_for",
]

#: display-text of the conf-uris entry of a conference the factory created (RFC 4579 s5.4).
#: The policy itself is ``ConferenceObject.ad_hoc``; state files written before that field
#: existed are recognised by this text.
AD_HOC_MARK = "SIP conference URI (ad hoc, created by the conference factory)"


def user_for(info: ConferenceInfo, caller: str) -> User | None:
    """The user one of whose endpoints is the caller's AOR."""
    if info.users is None:
        return None
    for user in info.users.users:
        if any(e.entity is not None and same_aor(e.entity, caller) for e in user.endpoints):
            return user
    return None


def endpoint_entity(user: User, caller: str) -> str:
    """The entity of the user's endpoint for the caller (the caller's AOR if none yet)."""
    for e in user.endpoints:
        if e.entity is not None and same_aor(e.entity, caller):
            return e.entity
    return caller


def media_status(user: User, caller: str) -> str | None:
    """The audio status asked for the caller's endpoint. A patch naming no endpoint entity
    (what other CCMP clients may send) is appended by the core's merge as a keyless
    endpoint, so the last mention wins."""
    found: str | None = None
    for e in user.endpoints:
        if e.entity is None or same_aor(e.entity, caller):
            for medium in e.media:
                if medium.type in (None, "audio") and medium.status is not None:
                    found = str(medium.status)
    return found


def targets(info: ConferenceInfo) -> set[tuple[str, str]]:
    """(URI, method) of every allowed-users-list target (RFC 6501 s4.6.3)."""
    users = info.users
    if users is None or users.allowed_users_list is None:
        return set()
    return {
        (t.uri, str(t.method or TargetMethod.DIAL_IN)) for t in users.allowed_users_list.targets
    }


def is_ad_hoc(obj: ConferenceObject) -> bool:
    """Made by the conference factory: it ends when its callers leave (RFC 4579 s5.4)."""
    if obj.ad_hoc:
        return True
    desc = obj.info.conference_description
    return (
        desc is not None
        and desc.conf_uris is not None
        and any(e.display_text == AD_HOC_MARK for e in desc.conf_uris.entries)
    )
