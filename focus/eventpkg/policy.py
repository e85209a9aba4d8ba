"""What a subscriber may see of a conference: the privacy policy applied before
any notification body is built (RFC 5239 s8.2, RFC 4575 s8.2, RFC 6501 s4.6.5.1).

RFC 5239 s8.2 asks the notification service to filter by the subscriber's user
identifier and role; RFC 4575 s8.2 asks for distinct views per role and for
participant privacy.  The exact rules are local policy; ours, in one place:

* **Privileged** roles are ``administrator`` and ``moderator`` (the conference
  owner is a moderator, the caller maps that).  Everyone else (``user``,
  ``participant``, ``observer``, ``none`` or an unknown role) is unprivileged.
* Unprivileged subscribers never see conference passwords
  (``<xcon:conference-password>`` in conf-uris entries, RFC 6501 s4.2.6), nor
  the ``<xcon:allowed-users-list>`` / ``<xcon:deny-users-list>`` (which name
  people who may not be in the conference at all, with e-mail addresses).
* ``<xcon:provide-anonymity>`` of a user (never applied to the subscriber's
  own user entry):

  - ``hidden``: the user is left out for unprivileged subscribers;
  - ``semi-private``: anonymous for unprivileged subscribers;
  - ``private``: anonymous for everybody except administrators;
  - an unknown value is treated as ``private`` (fail closed).

  An anonymous user keeps its roles, languages, endpoint status, joining and
  disconnection methods and media (what the roster needs), and loses every
  identity: its 'entity' becomes ``sip:anonymous-<tag>@anonymous.invalid``
  (RFC 4575 s5.6: the .invalid TLD, unique per user), endpoint entities
  become ``sip:anonymous-<tag>-<n>@anonymous.invalid``, and display texts,
  associated AORs, cascaded focus, referred/joining/disconnection info
  ("by" names someone), call-info and the anonymity element itself go.
  ``<tag>`` is an HMAC of the real entity under ``pseudonym_key``: stable
  across notifications (so partial notifications stay coherent) and not
  reversible without the key.  The focus should pass one random key per
  process; the empty default key only stops casual reading.
* Sidebars by value are filtered with the same rules.

``user-count`` is left as the conference reports it: hiding how many people
are in a conference is not something the anonymity levels promise.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
from dataclasses import replace
from typing import Any

from focus.xcon.model import (
    Anonymity,
    ConferenceDescription,
    ConferenceInfo,
    Endpoint,
    Role,
    User,
    UserAdmissionPolicy,
    Users,
)

__all__ = ["PRIVILEGED_ROLES", "may_subscribe", "view_for"]

#: Roles that see the whole conference object (see the module doc).
PRIVILEGED_ROLES = frozenset({Role.ADMINISTRATOR, Role.MODERATOR})


def _role_name(role: object) -> str:
    # A Role or a plain string (an extension role stays itself: unprivileged).
    value = role.value if isinstance(role, enum.Enum) else role
    return str(value)


def view_for(
    role: Role | enum.Enum | str,
    user_id: str | None,
    conference: ConferenceInfo,
    *,
    pseudonym_key: bytes = b"",
) -> ConferenceInfo:
    """The part of ``conference`` a subscriber with ``role`` may see.

    ``role`` is an RFC 6501 role: the model's ``Role`` (the one role type; the
    subscriber's :func:`focus.xcon.model.effective_role`) or the plain string.  ``user_id`` is the
    subscriber's own XCON-USERID or URI (its user entry is never anonymized or
    hidden from it); None for a subscriber who is not a user of the
    conference.  Pure: the same inputs give the same view.
    """
    name = _role_name(role)
    privileged = name in {r.value for r in PRIVILEGED_ROLES}
    administrator = name == Role.ADMINISTRATOR.value
    return _filter(conference, privileged, administrator, user_id, pseudonym_key)


def may_subscribe(
    role: Role | enum.Enum | str, user_id: str | None, conference: ConferenceInfo
) -> bool:
    """Whether a SUBSCRIBE to the conference package is authorized (answer 403
    if not).

    * ``<xcon:allow-conference-event-subscription>`` false: nobody (RFC 6501
      s4.4.1: the subscription MUST be rejected; absent means true);
    * administrators and moderators: yes;
    * users of the conference (RFC 4575 s3.5 recommends them), and those its
      allowed-users-list names: yes;
    * anyone else: only if anyone could join (user-admission-policy
      "anonymous" or "openAuthenticated", RFC 6501 s4.6.2); an absent policy
      counts as closed.
    """
    state = conference.conference_state
    if state is not None and state.allow_conference_event_subscription is False:
        return False
    if _role_name(role) in {r.value for r in PRIVILEGED_ROLES}:
        return True
    users = conference.users
    if users is None:
        return False
    if user_id is not None:
        if conference.user(user_id) is not None:
            return True
        allowed = users.allowed_users_list
        if allowed is not None and any(t.uri == user_id for t in allowed.targets):
            return True
    policy = users.user_admission_policy
    return policy is not None and str(policy) in {
        UserAdmissionPolicy.ANONYMOUS.value,
        UserAdmissionPolicy.OPEN_AUTHENTICATED.value,
    }


def _filter(
    conf: ConferenceInfo, privileged: bool, administrator: bool, me: str | None, key: bytes
) -> ConferenceInfo:
    changes: dict[str, Any] = {}
    if not privileged and conf.conference_description is not None:
        desc = _without_passwords(conf.conference_description)
        if desc is not conf.conference_description:
            changes["conference_description"] = desc
    if conf.users is not None:
        users = _filter_users(conf.users, privileged, administrator, me, key)
        if users is not conf.users:
            changes["users"] = users
    if conf.sidebars_by_val is not None and conf.sidebars_by_val.entries:
        entries = tuple(
            _filter(s, privileged, administrator, me, key) for s in conf.sidebars_by_val.entries
        )
        if any(a is not b for a, b in zip(entries, conf.sidebars_by_val.entries, strict=True)):
            changes["sidebars_by_val"] = replace(conf.sidebars_by_val, entries=entries)
    return replace(conf, **changes) if changes else conf


def _without_passwords(desc: ConferenceDescription) -> ConferenceDescription:
    uris = desc.conf_uris
    if uris is None or not any(e.conference_passwords for e in uris.entries):
        return desc
    entries = tuple(replace(e, conference_passwords=()) for e in uris.entries)
    return replace(desc, conf_uris=replace(uris, entries=entries))


def _filter_users(
    users: Users, privileged: bool, administrator: bool, me: str | None, key: bytes
) -> Users:
    changes: dict[str, Any] = {}
    if not privileged and (users.allowed_users_list is not None or users.deny_users_list):
        changes["allowed_users_list"] = None
        changes["deny_users_list"] = None
    kept: list[User] = []
    altered = False
    for user in users.users:
        shown = _filter_user(user, privileged, administrator, me, key)
        altered = altered or shown is not user
        if shown is not None:
            kept.append(shown)
    if altered:
        changes["users"] = tuple(kept)
    return replace(users, **changes) if changes else users


def _filter_user(
    user: User, privileged: bool, administrator: bool, me: str | None, key: bytes
) -> User | None:
    level = user.provide_anonymity
    if level is None or (me is not None and user.entity == me):
        return user
    if level == Anonymity.HIDDEN:
        return user if privileged else None
    if level == Anonymity.SEMI_PRIVATE:
        return user if privileged else _anonymous(user, key)
    # "private", and unknown values: fail closed
    return user if administrator else _anonymous(user, key)


def _pseudonym(entity: str | None, key: bytes) -> str:
    digest = hmac.new(key, (entity or "").encode("utf-8"), hashlib.sha256).hexdigest()
    return digest[:16]


def _anonymous(user: User, key: bytes) -> User:
    tag = _pseudonym(user.entity, key)
    endpoints = tuple(
        Endpoint(
            entity=f"sip:anonymous-{tag}-{n}@anonymous.invalid",
            status=e.status,
            joining_method=e.joining_method,
            disconnection_method=e.disconnection_method,
            media=tuple(replace(m, display_text=None) for m in e.media),
        )
        for n, e in enumerate(user.endpoints, start=1)
    )
    return User(
        entity=f"sip:anonymous-{tag}@anonymous.invalid",
        roles=user.roles,
        languages=user.languages,
        endpoints=endpoints,
        allow_refer_users_dynamically=user.allow_refer_users_dynamically,
        allow_invite_users_dynamically=user.allow_invite_users_dynamically,
        allow_remove_users_dynamically=user.allow_remove_users_dynamically,
    )
