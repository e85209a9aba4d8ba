"""Ad hoc conferences (RFC 4579 s5.4) are core state: the mark survives a restart."""

from __future__ import annotations

from pathlib import Path

from focus.core import commands as cmd
from focus.core.policy import Actor
from focus.core.store import ConferenceStore
from tests.focus.core.conftest import open_store

SYSTEM = Actor.system()


def test_ad_hoc_mark_is_persisted(state_dir: Path, store: ConferenceStore) -> None:
    (created,) = store.apply(cmd.CreateConference(actor=SYSTEM, ad_hoc=True))
    (plain,) = store.apply(cmd.CreateConference(actor=SYSTEM))
    assert store.get(created.uri) is not None and store.get(created.uri).ad_hoc  # type: ignore[union-attr]
    store.close()
    again = open_store(state_dir)
    try:
        kept = again.get(created.uri)
        other = again.get(plain.uri)
        assert kept is not None and kept.ad_hoc
        assert other is not None and not other.ad_hoc
    finally:
        again.close()


def test_a_clone_of_an_ad_hoc_conference_is_not_ad_hoc(store: ConferenceStore) -> None:
    (created,) = store.apply(cmd.CreateConference(actor=SYSTEM, ad_hoc=True))
    (clone,) = store.apply(cmd.CreateConference(actor=SYSTEM, clone_from=created.uri))
    obj = store.get(clone.uri)
    assert obj is not None and not obj.ad_hoc
