"""Hypothesis strategies: pairs of related conference snapshots (old, new).

Independent random conferences would almost never share users, so every diff
would be "replace everything".  These pairs come from one conference and an
edit of it: users leave, change (a fresh user value under the same entity,
or one endpoint/field changed) and join, top-level elements change or go.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from hypothesis import strategies as st

from focus.xcon import model
from focus.xcon.model import ConferenceInfo, Endpoint, User, Users
from tests.focus.xcon import strategies as xs


def _keyed_users() -> st.SearchStrategy[User]:
    return st.builds(lambda u, e: replace(u, entity=e), xs.users(), xs.uris)


def _distinct_entities(users: list[User]) -> list[User]:
    seen: set[str | None] = set()
    out = []
    for u in users:
        if u.entity not in seen:
            seen.add(u.entity)
            out.append(u)
    return out


@st.composite
def _edited_user(draw: st.DrawFn, old: User) -> User:
    choice = draw(st.integers(0, 3))
    if choice == 0:  # a whole new value under the same key
        return replace(draw(xs.users()), entity=old.entity)
    if choice == 1 and old.endpoints:  # one endpoint changed
        i = draw(st.integers(0, len(old.endpoints) - 1))
        new_ep = replace(draw(xs.elements(Endpoint)), entity=old.endpoints[i].entity)
        eps = list(old.endpoints)
        eps[i] = new_ep
        return replace(old, endpoints=tuple(eps))
    if choice == 2:  # a field set or cleared
        return replace(old, display_text=draw(st.none() | xs.texts))
    return replace(old, endpoints=old.endpoints[:-1])


@st.composite
def conference_pairs(draw: st.DrawFn, depth: int = 0) -> tuple[ConferenceInfo, ConferenceInfo]:
    """(old, new): a conference and an edit of it."""
    old = draw(xs.conference_infos(depth))
    base_users = _distinct_entities(
        draw(st.lists(_keyed_users(), min_size=1, max_size=4))
        + list(old.users.users if old.users else ())
    )
    old = replace(old, users=replace(old.users or Users(), users=tuple(base_users)))
    kept: list[User] = []
    for u in base_users:
        fate = draw(st.sampled_from(["edit", "keep", "drop"]))
        if fate == "keep":
            kept.append(u)
        elif fate == "edit":
            kept.append(draw(_edited_user(u)))
    joined = draw(st.lists(_keyed_users(), max_size=2))
    new_users = _distinct_entities(kept + joined)
    if draw(st.sampled_from(range(5))) == 2 and len(new_users) > 1:
        new_users = new_users[1:] + new_users[:1]  # a reordering
    changes: dict[str, Any] = {"users": replace(old.users or Users(), users=tuple(new_users))}
    for name in ("conference_description", "host_info", "conference_state", "sidebars_by_ref"):
        if draw(st.sampled_from(range(5))) == 2:  # rarely (integers() favours bounds)
            cls = {
                "conference_description": model.ConferenceDescription,
                "host_info": model.HostInfo,
                "conference_state": model.ConferenceState,
                "sidebars_by_ref": model.Uris,
            }[name]
            changes[name] = draw(st.none() | xs.elements(cls))
    if draw(st.sampled_from(range(8))) == 3:
        changes["users"] = None
    return old, replace(old, **changes)
