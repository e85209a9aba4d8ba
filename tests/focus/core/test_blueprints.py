"""Blueprints as data files (RFC 5239 s7.1; draft-ietf-xcon-examples s5.4)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from focus.core import commands as cmd
from focus.core.blueprints import BUNDLED_DIR, BlueprintError, load_blueprints
from focus.core.core import CoreConfig
from focus.core.errors import CoreError, ErrorKind
from focus.core.policy import Actor
from focus.core.state import ObjectKind
from tests.focus.core.conftest import ALICE, BOB, add_accounts, open_store

SEED_FIVE = ["AudioConference1", "AudioConference2", "AudioRoom", "VideoConference1", "VideoRoom"]


def media_types(obj_info: object) -> list[str | None]:
    desc = getattr(obj_info, "conference_description", None)
    assert desc is not None and desc.available_media is not None
    return [m.type for m in desc.available_media.entries]


def test_bundled_blueprints() -> None:
    found = {b.name or "": b for b in load_blueprints("example.com")}
    assert sorted(found) == sorted([*SEED_FIVE, "ChatRoom"])
    for name, obj in found.items():
        assert obj.kind is ObjectKind.BLUEPRINT
        assert obj.uri == f"xcon:{name}@example.com" == obj.info.entity
        desc = obj.info.conference_description
        assert desc is not None and desc.display_text == name and desc.free_text
    assert media_types(found["AudioRoom"].info) == ["audio"]
    assert media_types(found["VideoRoom"].info) == ["audio", "video"]
    assert media_types(found["ChatRoom"].info) == ["text"]
    private = found["AudioConference2"].info.users
    assert private is not None and private.join_handling == "confirm"


def test_list_and_read_through_store(tmp_path: Path) -> None:
    store = add_accounts(open_store(tmp_path))
    try:
        names = [b.name for b in store.list_blueprints(BOB)]
        assert names == sorted([*SEED_FIVE, "ChatRoom"])
        assert store.get_blueprint(BOB, "xcon:ChatRoom@example.com").name == "ChatRoom"
    finally:
        store.close()


def test_domain_follows_config(tmp_path: Path) -> None:
    store = open_store(tmp_path, config=CoreConfig(domain="conf.example.org"))
    system = Actor.system()
    try:
        uris = [b.uri for b in store.list_blueprints(system)]
        assert "xcon:AudioRoom@conf.example.org" in uris
        created = store.apply(cmd.CreateConference(actor=system))[0].uri
        assert created.endswith("@conf.example.org")
        # an XCON-USERID of another domain is not a user of this system (421)
        with pytest.raises(CoreError) as exc:
            store.list_blueprints(BOB)
        assert exc.value.kind is ErrorKind.INVALID_CONF_USER_ID
    finally:
        store.close()


def test_operator_directory_adds_and_overrides(tmp_path: Path) -> None:
    extra = tmp_path / "blueprints"
    extra.mkdir()
    shutil.copy(BUNDLED_DIR / "ChatRoom.xml", extra / "Townhall.xml")
    text = (
        (BUNDLED_DIR / "AudioRoom.xml")
        .read_text()
        .replace("<maximum-user-count>100<", "<maximum-user-count>7<")
    )
    (extra / "AudioRoom.xml").write_text(text)
    store = add_accounts(open_store(tmp_path / "state", blueprint_dirs=[extra]))
    try:
        names = [b.name for b in store.list_blueprints(BOB)]
        assert "Townhall" in names and names.count("AudioRoom") == 1
        uri = store.apply(cmd.CreateConference(actor=ALICE))[0].uri  # default: AudioRoom
        desc = store.get_conference(ALICE, uri).info.conference_description
        assert desc is not None and desc.maximum_user_count == 7
    finally:
        store.close()


def test_default_blueprint_is_configurable(tmp_path: Path) -> None:
    store = add_accounts(open_store(tmp_path, config=CoreConfig(default_blueprint="ChatRoom")))
    try:
        uri = store.apply(cmd.CreateConference(actor=ALICE))[0].uri
        assert media_types(store.get_conference(ALICE, uri).info) == ["text"]
    finally:
        store.close()
    missing = add_accounts(open_store(tmp_path / "b", config=CoreConfig(default_blueprint="Nope")))
    try:
        with pytest.raises(CoreError) as exc:
            missing.apply(cmd.CreateConference(actor=ALICE))
        assert exc.value.kind is ErrorKind.NOT_FOUND
    finally:
        missing.close()


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("Broken", "<conference-info", "Broken.xml"),
        ("Evil", '<!DOCTYPE x [<!ENTITY a "b">]><x/>', "Evil.xml"),
        (
            "WithPassword",
            (BUNDLED_DIR / "AudioRoom.xml")
            .read_text()
            .replace(
                "<maximum-user-count>",
                "<conf-uris><entry><uri>sip:a@b</uri>"
                "<xcon:conference-password>1</xcon:conference-password></entry></conf-uris>"
                "<maximum-user-count>",
            ),
            "conference-password",
        ),
        ("bad name!", "<x/>", "not a usable blueprint name"),
    ],
)
def test_bad_blueprint_files(tmp_path: Path, name: str, content: str, message: str) -> None:
    (tmp_path / f"{name}.xml").write_text(content)
    with pytest.raises(BlueprintError, match=message):
        load_blueprints("example.com", [tmp_path])


def test_missing_directory(tmp_path: Path) -> None:
    with pytest.raises(BlueprintError, match="not a directory"):
        load_blueprints("example.com", [tmp_path / "nope"])


def test_generated_uris_skip_blueprint_names(tmp_path: Path) -> None:
    extra = tmp_path / "blueprints"
    extra.mkdir()
    shutil.copy(BUNDLED_DIR / "ChatRoom.xml", extra / "conf1.xml")
    store = add_accounts(open_store(tmp_path / "state", blueprint_dirs=[extra]))
    try:
        uri = store.apply(cmd.CreateConference(actor=ALICE))[0].uri
        assert uri != "xcon:conf1@example.com"
        blueprint = store.get("xcon:conf1@example.com")
        assert blueprint is not None and blueprint.kind is ObjectKind.BLUEPRINT
    finally:
        store.close()
