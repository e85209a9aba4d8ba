"""SIP profiles (sip_profiles/*.toml) and the serve command's SIP options."""

from __future__ import annotations

from pathlib import Path

import pytest

from focus.__main__ import build_parser
from focus.settings import PROFILE_DIR, FocusSettings, HostPort, SettingsError, SipProfile


def test_default_profile_is_the_documented_one() -> None:
    profile = SipProfile.load("default")
    assert profile == SipProfile(name="default")
    assert profile.factory_uri == "sip:conference@localhost"
    assert profile.listen == HostPort("127.0.0.1", 5060)
    assert profile.transports == ("udp", "tcp")
    assert (profile.t1, profile.t2, profile.t4) == (0.5, 4.0, 5.0)


def test_every_bundled_profile_loads() -> None:
    names = sorted(p.stem for p in PROFILE_DIR.glob("*.toml"))
    assert "default" in names and len(names) >= 2
    for name in names:
        assert SipProfile.load(name).name == name


def test_conference_uri_pattern_round_trips() -> None:
    profile = SipProfile.load("lan")
    assert profile.conference_uri("conf7") == "sip:room-conf7@conference.example.org"
    assert profile.conference_id_of("room-conf7") == "conf7"
    assert profile.conference_id_of("room-") is None
    assert profile.conference_id_of("conference") is None
    assert SipProfile().conference_id_of("conf3") == "conf3"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("domain = 3", "domain must be a str"),
        ("colour = 'red'", "unknown keys colour"),
        ("transports = ['sctp']", "transports must be"),
        ("conference_user = 'conf'", "must contain {id}"),
        ("factory_user = 'a b'", "bad factory_user"),
        ("t1 = 2.0\nt2 = 1.0", "timers need"),
        ("t1 = true", "t1 must be a number"),
        ("listen = '1.2.3.4:99999'", "invalid port"),
        ("domain = ", "not TOML"),
        ("factory_user = 'room-x'\nconference_user = 'room-{id}'", None),
    ],
)
def test_bad_profiles_are_refused_with_the_reason(text: str, message: str | None) -> None:
    if message is None:
        assert SipProfile.from_toml("t", text).factory_user == "room-x"
        return
    with pytest.raises(SettingsError, match=message.replace("{", r"\{").replace("}", r"\}")):
        SipProfile.from_toml("t", text)


def test_profile_from_a_path_and_a_missing_one(tmp_path: Path) -> None:
    path = tmp_path / "mine.toml"
    path.write_text('domain = "example.net"\nlisten = "127.0.0.1:5099"\n')
    profile = SipProfile.load(str(path))
    assert profile.name == "mine" and profile.factory_uri == "sip:conference@example.net"
    with pytest.raises(SettingsError, match="cannot read profile"):
        SipProfile.load("no-such-profile")
    with pytest.raises(SettingsError, match="bad profile name"):
        SipProfile.load("../etc/passwd")


def test_serve_parses_the_sip_options() -> None:
    args = build_parser().parse_args(
        [
            "serve",
            "--sip-listen",
            "127.0.0.1:5070",
            "--profile",
            "lan",
            "--media-server",
            "sip:ms@127.0.0.1:5090",
        ]
    )
    assert (args.sip_listen, args.profile, args.media_server) == (
        "127.0.0.1:5070",
        "lan",
        "sip:ms@127.0.0.1:5090",
    )


def test_media_server_must_be_a_sip_uri(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="must be a SIP URI"):
        FocusSettings(state_dir=tmp_path, media_server="http://x")
    assert FocusSettings(state_dir=tmp_path, media_server="sip:ms@127.0.0.1:5090")
