"""The command-line client, run as a real process against a real server."""

from __future__ import annotations

import os
import re
from pathlib import Path

from ccmp_server.app import CcmpConfig, CcmpServer, start_ccmp
from focus.core.core import CoreConfig
from focus.core.store import ConferenceStore
from focus.xcon.model import Role
from tests.ccmp_server.conftest import cli, run_client_module


async def test_module_entry_point_with_password_from_environment(server: CcmpServer) -> None:
    code, out, err = await run_client_module(
        "--url",
        server.url,
        "--user",
        "alice",
        "blueprints",
        env={**os.environ, "CCMP_PASSWORD": "pw-alice"},
    )
    assert code == 0, err
    assert b"xcon:AudioRoom@example.com" in out


async def test_conference_lifecycle_from_the_command_line(server: CcmpServer) -> None:
    code, out, _ = await cli(server, "blueprints")
    assert code == 0 and "xcon:AudioRoom@example.com" in out and "AudioRoom" in out

    code, out, _ = await cli(server, "create", "--blueprint", "xcon:VideoRoom@example.com")
    assert code == 0, out
    match = re.search(r"object: (\S+)", out)
    assert match
    conf = match.group(1)
    assert "version: 1" in out

    code, out, _ = await cli(server, "update", conf, "--title", "Weekly sync")
    assert code == 0 and "version: 2" in out
    code, out, _ = await cli(server, "show", conf)
    assert code == 0 and "title: Weekly sync" in out and "video" in out

    code, out, _ = await cli(server, "confs")
    assert conf in out

    code, out, _ = await cli(
        server, "add-user", conf, "--dial-out", "sip:carol@example.com", "--name", "Carol"
    )
    assert code == 0, out
    entity = re.search(r"user (xcon-userid:\S+)", out)
    assert entity, out
    code, out, _ = await cli(server, "mute", conf, entity.group(1))
    assert code == 0, out
    code, out, _ = await cli(server, "user", conf, entity.group(1))
    assert re.search(
        r"^    endpoint sip:carol@example.com dialed-out audio=recvonly\(muted\)$", out, re.M
    ), out
    code, out, _ = await cli(server, "unmute", conf, entity.group(1))
    code, out, _ = await cli(server, "users", conf)
    assert f'  user {entity.group(1)} "Carol"\n' in out and " audio=sendrecv\n" in out, out

    code, out, _ = await cli(server, "sidebar-create", conf)
    assert code == 0, out
    side = re.search(r"object: (\S+)", out)
    assert side
    code, out, _ = await cli(server, "sidebars", conf)
    assert side.group(1) in out
    code, out, err = await cli(server, "sidebar-delete", side.group(1))
    assert code == 0, out + err

    code, out, _ = await cli(server, "summary", conf)
    assert code == 0 and "title: Weekly sync" in out and "status: active" in out

    code, out, _ = await cli(server, "remove", conf, entity.group(1))
    assert code == 0
    code, out, _ = await cli(server, "delete", conf)
    assert code == 0
    code, out, err = await cli(server, "show", conf)
    assert code == 1 and "404" in err


async def test_create_from_a_conf_info_file_and_raw_xml(server: CcmpServer, tmp_path: Path) -> None:
    info = tmp_path / "conf.xml"
    info.write_text(
        '<conference-info xmlns="urn:ietf:params:xml:ns:conference-info" '
        'entity="xcon:AUTO_GENERATE_1@example.com"><conference-description>'
        "<display-text>From a file</display-text></conference-description></conference-info>"
    )
    code, out, _ = await cli(server, "--xml", "create", "--info", str(info))
    assert code == 0, out
    assert "<ccmp:ccmpRequest" in out and "<ccmp:ccmpResponse" in out
    assert "<response-code>200</response-code>" in out
    assert "From a file" in out


async def test_options_and_clear_errors(server: CcmpServer) -> None:
    code, out, _ = await cli(server, "options")
    assert code == 0 and "confRequest: retrieve, create, update, delete" in out
    assert "confSummaryRequest: retrieve" in out
    code, _, err = await cli(server, "blueprints", user="mallory")
    assert code == 1 and "CCMP error 424" in err
    code, _, err = await cli(server.url.replace(str(server.port), "1"), "blueprints")
    assert code == 2 and "cannot reach" in err
    code, _, err = await cli(server.url + "/nope", "blueprints")
    assert code == 2 and "HTTP 404" in err


async def test_create_with_a_title_learns_the_servers_domain(tmp_path: Path) -> None:
    # The client cannot know the server's domain; it must not send a placeholder the
    # server refuses with 427 (RFC 6503 s4.3) but learn the domain from its confUserID.
    store = ConferenceStore.open(tmp_path / "org", CoreConfig(domain="example.org"), scrypt_n=16)
    store.accounts.add("alice", Role.USER, "pw-alice")
    server = await start_ccmp(store, CcmpConfig(port=0))
    try:
        code, out, err = await cli(server, "--xml", "create", "--title", "Standup")
        assert code == 0, out + err
        assert 'entity="xcon:AUTO_GENERATE_1@example.org"' in out
        assert "<response-code>200</response-code>" in out
        code, out, err = await cli(server, "create", "--title", "Retro")
        assert code == 0, err
        conf = re.search(r"object: (xcon:\S+@example\.org)", out)
        assert conf, out
        assert "title: Retro" in out and "media: audio" in out  # the default blueprint's
        # a domain given on the command line is used as is (also for our XCON-USERID)
        code, _, err = await cli(server, "--domain", "example.com", "create", "--title", "X")
        assert code == 1 and "CCMP error 421" in err
        code, out, err = await cli(server, "add-user", conf.group(1), "--dial-in", "sip:d@x")
        assert code == 0 and "@example.org" in out, err
    finally:
        await server.close()
        store.close()


async def test_create_default_and_by_cloning_from_the_command_line(server: CcmpServer) -> None:
    code, out, err = await cli(server, "create")  # the default blueprint
    assert code == 0, err
    match = re.search(r"object: (\S+)", out)
    assert match and "title: AudioRoom" in out and "media: audio" in out
    original = match.group(1)
    code, out, err = await cli(server, "create", "--clone", original)
    assert code == 0, err
    clone = re.search(r"object: (\S+)", out)
    assert clone and clone.group(1) != original and "title: AudioRoom" in out
    code, out, err = await cli(server, "add-user", clone.group(1), "--dial-in", "sip:dan@x.org")
    assert code == 0, err
    assert re.search(
        r"^  user xcon-userid:\S+\n    endpoint sip:dan@x.org dialed-in$", out, re.M
    ), out
    code, _, err = await cli(server, "create", "--clone", "xcon:nothing@example.com")
    assert code == 1 and "CCMP error 404" in err


CONF_FILE = (
    '<conference-info xmlns="urn:ietf:params:xml:ns:conference-info" '
    'entity="xcon:AUTO_GENERATE_1@example.com"><conference-description>'
    "<display-text>From a file</display-text></conference-description></conference-info>"
)
# Each `create` option combination and what it gives: (options, title shown afterwards,
# version afterwards) for those served; (options, usage error) for those refused.
SERVED: list[tuple[tuple[str, ...], str, int]] = [
    ((), "AudioRoom", 1),
    (("--blueprint", "xcon:VideoRoom@example.com"), "VideoRoom", 1),
    (("--clone", "ORIGINAL"), "Original", 1),
    (("--info", "FILE"), "From a file", 1),
    (("--title", "Standup"), "Standup", 1),
    (("--blueprint", "xcon:VideoRoom@example.com", "--title", "Standup"), "Standup", 2),
    (("--clone", "ORIGINAL", "--title", "Standup"), "Standup", 2),
]
REFUSED: list[tuple[tuple[str, ...], str]] = [
    (("--info", "FILE", "--title", "T"), "give the title inside the --info file"),
    (("--blueprint", "xcon:VideoRoom@example.com", "--clone", "ORIGINAL"), "not allowed with"),
    (("--blueprint", "xcon:VideoRoom@example.com", "--info", "FILE"), "not allowed with"),
    (("--clone", "ORIGINAL", "--info", "FILE"), "not allowed with"),
]


async def test_rfc6503_s5_3_4_every_create_option_combination(
    server: CcmpServer, tmp_path: Path
) -> None:
    # A create carries <confObjID> or <confInfo>, never both (s5.3.4): a clone's title is
    # a second request, an update at the version the create returned.
    code, out, err = await cli(server, "create", "--title", "Original")
    assert code == 0, err
    original = re.search(r"object: (\S+)", out)
    assert original, out
    (tmp_path / "conf.xml").write_text(CONF_FILE)
    names = {"ORIGINAL": original.group(1), "FILE": str(tmp_path / "conf.xml")}
    for options, title, version in SERVED:
        argv = [names.get(a, a) for a in options]
        code, out, err = await cli(server, "create", *argv)
        assert code == 0, (options, out, err)
        made = re.findall(r"object: (\S+)", out)
        assert made and made[0] != original.group(1), (options, out)
        code, shown, err = await cli(server, "show", made[0])
        assert code == 0, err
        assert f"  title: {title}\n" in shown and f"  version: {version}\n" in shown, shown
    for options, message in REFUSED:
        argv = [names.get(a, a) for a in options]
        code, out, err = await cli(server, "create", *argv)
        assert (code, out) == (2, ""), (options, err)
        assert message in err and "usage:" in err, (options, err)


async def test_a_clones_title_goes_in_a_second_request_with_the_version(
    server: CcmpServer,
) -> None:
    code, out, err = await cli(
        server, "--xml", "create", "--blueprint", "xcon:VideoRoom@example.com", "--title", "Q"
    )
    assert code == 0, err
    requests = re.findall(r"<ccmp:ccmpRequest.*?</ccmp:ccmpRequest>", out, re.S)
    assert len(requests) == 2, out
    create, update = requests
    assert "<operation>create</operation>" in create and "confInfo" not in create
    assert "<confObjID>xcon:VideoRoom@example.com</confObjID>" in create
    assert "<operation>update</operation>" in update and 'version="1"' in update
    assert out.count("<response-code>200</response-code>") == 2


async def test_cloning_a_protected_conference_with_a_title_needs_its_password(
    server: CcmpServer, tmp_path: Path
) -> None:
    info = tmp_path / "secret.xml"
    info.write_text(
        '<conference-info xmlns="urn:ietf:params:xml:ns:conference-info" '
        'xmlns:xcon="urn:ietf:params:xml:ns:xcon-conference-info" '
        'entity="xcon:AUTO_GENERATE_1@example.com"><conference-description><conf-uris><entry>'
        "<uri>sip:s@example.com</uri><xcon:conference-password>42</xcon:conference-password>"
        "</entry></conf-uris></conference-description></conference-info>"
    )
    code, out, err = await cli(server, "create", "--info", str(info))
    assert code == 0, err
    secret = re.search(r"object: (\S+)", out)
    assert secret
    # Without the password the create is refused and no update follows.
    code, out, err = await cli(
        server, "--xml", "create", "--clone", secret.group(1), "--title", "Q"
    )
    assert code == 1 and "CCMP error 423" in err and "when setting the title" not in err
    assert out.count("<ccmp:ccmpRequest") == 1, out
    # With it both go through: the clone is protected by the same password, the update too.
    code, out, err = await cli(
        server, "--conf-password", "42", "create", "--clone", secret.group(1), "--title", "Q"
    )
    assert code == 0, err
    clone = re.search(r"object: (\S+)", out)
    assert clone and "  version: 2\n" in out, out
    code, shown, err = await cli(server, "--conf-password", "42", "show", clone.group(1))
    assert code == 0 and "  title: Q\n" in shown, err
