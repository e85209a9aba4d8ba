"""What the command-line client prints for an operator, against a real server: a
conference's URIs and state, each user with its roles and each endpoint with its status,
joining method and media; every command's --help; specific usage errors."""

from __future__ import annotations

import argparse
import io
import re
from pathlib import Path

import pytest

from ccmp_server.app import CcmpServer
from ccmp_server.client import _parser, main
from tests.ccmp_server.conftest import cli, run_client_module

# A conference-info document (RFC 4575 / RFC 6501) with every field the readable output shows.
BOARD = """\
<conference-info xmlns="urn:ietf:params:xml:ns:conference-info"
    xmlns:xcon="urn:ietf:params:xml:ns:xcon-conference-info"
    entity="xcon:AUTO_GENERATE_1@example.com">
 <conference-description>
  <display-text>Board</display-text>
  <conf-uris>
   <entry><uri>sip:board@example.com</uri><display-text>dial this</display-text>
    <purpose>participation</purpose></entry>
   <entry><uri>sip:board-pin@example.com</uri>
    <xcon:conference-password>s3cret-pin</xcon:conference-password></entry>
  </conf-uris>
  <service-uris>
   <entry><uri>http://example.com/board</uri><purpose>web-page</purpose></entry>
  </service-uris>
  <available-media>
   <entry label="main-audio"><type>audio</type><status>sendrecv</status></entry>
   <entry label="main-video"><type>video</type><status>sendrecv</status></entry>
  </available-media>
 </conference-description>
 <conference-state><user-count>4</user-count><active>true</active><locked>false</locked>
 </conference-state>
 <users>
  <user entity="xcon-userid:AUTO_GENERATE_2@example.com"><display-text>Ann</display-text>
   <roles><entry>moderator</entry><entry>participant</entry></roles>
   <endpoint entity="sip:ann@example.com"><display-text>Ann's phone</display-text>
    <status>connected</status><joining-method>dialed-in</joining-method>
    <media id="1"><type>audio</type><status>recvonly</status></media>
    <media id="2"><label>main-video</label><status>sendrecv</status></media>
   </endpoint>
   <endpoint entity="sip:ann-desk@example.com"><status>on-hold</status>
    <joining-method>dialed-out</joining-method></endpoint>
  </user>
  <user entity="xcon-userid:AUTO_GENERATE_3@example.com">
   <endpoint entity="sip:bo@example.com"><status>disconnected</status>
    <joining-method>dialed-out</joining-method>
    <disconnection-method>booted</disconnection-method></endpoint>
  </user>
  <user entity="xcon-userid:AUTO_GENERATE_4@example.com"><display-text>Cy</display-text>
   <endpoint entity="sip:cy@example.com"><status>alerting</status>
    <joining-method>dialed-out</joining-method><media id="7"><status>inactive</status></media>
   </endpoint>
   <endpoint entity="sip:cy2@example.com"><status>dialing-out</status></endpoint>
  </user>
  <user entity="xcon-userid:AUTO_GENERATE_5@example.com"><display-text>Not yet</display-text>
   <roles><entry>observer</entry></roles>
  </user>
 </users>
</conference-info>
"""


# The board is protected (RFC 6503 s5.1): every request about it carries the password.
PIN = ("--conf-password", "s3cret-pin")


async def create_board(server: CcmpServer, tmp_path: Path, text: str = BOARD) -> tuple[str, str]:
    """Create the conference; returns its XCON-URI and the XCON-USERID prefix (user N is
    PREFIX + N as the server numbered them)."""
    info = tmp_path / "board.xml"
    info.write_text(text)
    code, out, err = await cli(server, "create", "--info", str(info))
    assert code == 0, out + err
    conf = re.search(r"object: (\S+)", out)
    assert conf, out
    return conf.group(1), out


def users_block(users: list[str]) -> str:
    ann, bo, cy, ny = users
    return (
        f'  user {ann} "Ann" roles=moderator,participant\n'
        '    endpoint sip:ann@example.com "Ann\'s phone" connected dialed-in'
        " audio=recvonly(muted) main-video=sendrecv\n"
        "    endpoint sip:ann-desk@example.com on-hold dialed-out\n"
        f"  user {bo}\n"
        "    endpoint sip:bo@example.com disconnected(booted) dialed-out\n"
        f'  user {cy} "Cy"\n'
        "    endpoint sip:cy@example.com alerting dialed-out #7=inactive\n"
        "    endpoint sip:cy2@example.com dialing-out\n"
        f'  user {ny} "Not yet" roles=observer\n'
    )


async def test_show_prints_uris_state_roles_and_one_line_per_endpoint(
    server: CcmpServer, tmp_path: Path
) -> None:
    conf, _ = await create_board(server, tmp_path)
    code, out, err = await cli(server, *PIN, "show", conf)
    assert code == 0, err
    users = re.findall(r"^  user (\S+)", out, re.M)
    assert len(users) == 4, out
    assert out == (
        "conf: 200 Success\n"
        f"  object: {conf}\n"
        "  version: 1\n"
        "  title: Board\n"
        '  conf-uri: sip:board@example.com participation "dial this"\n'
        "  conf-uri: sip:board-pin@example.com password-protected\n"
        "  service-uri: http://example.com/board web-page\n"
        "  state: active unlocked users=4\n"
        "  media: audio, video\n" + users_block(users)
    )
    # The conference password is a secret: flagged, never printed.
    assert "s3cret-pin" not in out
    # The same conference shows the same text again (stable order, nothing time-dependent).
    assert (await cli(server, *PIN, "show", conf))[1] == out


async def test_users_and_user_print_the_same_lines(server: CcmpServer, tmp_path: Path) -> None:
    conf, _ = await create_board(server, tmp_path)
    code, out, err = await cli(server, *PIN, "users", conf)
    assert code == 0, err
    users = re.findall(r"^  user (\S+)", out, re.M)
    assert out == f"users: 200 Success\n  object: {conf}\n  version: 1\n" + users_block(users)

    code, one, err = await cli(server, *PIN, "user", conf, users[1])
    assert code == 0, err
    assert one.endswith(
        f"  user {users[1]}\n    endpoint sip:bo@example.com disconnected(booted) dialed-out\n"
    ), one
    assert one.count("  user ") == 1


async def test_raw_xml_is_unchanged_by_the_readable_output(
    server: CcmpServer, tmp_path: Path
) -> None:
    conf, _ = await create_board(server, tmp_path)
    code, out, _ = await cli(server, *PIN, "--xml", "show", conf)
    assert code == 0
    assert "<ccmp:ccmpRequest" in out and "<ccmp:ccmpResponse" in out
    assert re.search(r"<(\w+:)?disconnection-method>booted</", out), out
    # --xml is the messages as they are, secrets included (it is what went over the wire).
    assert "s3cret-pin" in out and "recvonly(muted)" not in out


async def test_names_with_control_characters_cannot_break_lines_or_the_terminal(
    server: CcmpServer, tmp_path: Path
) -> None:
    # A display name comes from whoever called in; it must not add lines nor send escapes
    # (XML 1.0 forbids ESC, but allows the C1 CSI and bidi overrides).
    hostile = BOARD.replace(
        "<display-text>Cy</display-text>",
        '<display-text>C&#x9b;2Jy\n  user fake\t&#x202e; "q" \\</display-text>',
    )
    conf, _ = await create_board(server, tmp_path, hostile)
    code, out, err = await cli(server, *PIN, "users", conf)
    assert code == 0, err
    assert "\x9b" not in out and "\u202e" not in out and "\t" not in out
    assert out.count("\n  user ") == 4, out
    # Escapes made by the client are unambiguous: a backslash of the name's own is doubled.
    assert re.search(r'^  user \S+ "C\\u009b2Jy user fake \\u202e \\"q\\" \\\\"$', out, re.M), out


HELP_TEXT = {
    "show": "URIs, state, media, users and endpoints",
    "users": "recvonly(muted)",
    "user": "DISCONNECTION-METHOD",
    "update": "--title",
    "add-user": "--dial-out URI",
    "mute": "recvonly",
    "unmute": "sendrecv",
    "sidebars": "--by-ref",
}


def test_every_command_has_a_clear_help() -> None:
    action = next(a for a in _parser()._actions if isinstance(a, argparse._SubParsersAction))
    commands = sorted(action.choices)
    assert len(commands) == 19, commands
    out, err = io.StringIO(), io.StringIO()
    assert main(["--help"], out, err) == 0 and err.getvalue() == ""
    for command in commands:
        # Every command is listed with a one-line summary.
        assert re.search(rf"^    {re.escape(command)} +\S", out.getvalue(), re.M), command
    assert "Exit status" in out.getvalue()
    for command in commands:
        out, err = io.StringIO(), io.StringIO()
        assert main(["--url", "http://127.0.0.1:1/", command, "--help"], out, err) == 0
        text = out.getvalue()
        assert text.startswith(f"usage: python -m ccmp_server.client {command} "), text
        assert err.getvalue() == ""
        # A description sentence, and no positional argument left unexplained.
        assert re.search(r"^\S.*\.$", text, re.M), text
        for line in re.findall(r"^  ([A-Z][A-Z-]*) *(.*)$", text, re.M):
            assert line[1], f"{command}: {line[0]} has no help"
        assert HELP_TEXT.get(command, "") in text, text


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--url", "127.0.0.1:8080", "confs"], "--url must be an http:// or https:// URL"),
        (["--url", "ftp://127.0.0.1/", "confs"], "--url must be an http:// or https:// URL"),
        (["--url", "http://127.0.0.1:1/", "--timeout", "0", "confs"], "--timeout must be"),
        (["--url", "http://127.0.0.1:1/", "--timeout", "soon", "confs"], "invalid float value"),
        (["--url", "http://127.0.0.1:1/", "update", "xcon:c@example.com"], "--title --info"),
        (["--url", "http://127.0.0.1:1/", "show"], "CONF"),
        (["--url", "http://127.0.0.1:1/", "frobnicate"], "invalid choice: 'frobnicate'"),
        (["confs"], "--url"),
        (
            ["--url", "http://127.0.0.1:1/", "--cafile", "ca.pem", "--insecure", "confs"],
            "not allowed with argument",
        ),
        (
            ["--url", "http://127.0.0.1:1/", "create", "--info", "c.xml", "--title", "T"],
            "give the title inside the --info file",
        ),
    ],
)
def test_usage_errors_are_specific(argv: list[str], message: str) -> None:
    out, err = io.StringIO(), io.StringIO()
    assert main(argv, out, err) == 2
    assert out.getvalue() == ""
    assert message in err.getvalue() and "usage:" in err.getvalue(), err.getvalue()


async def test_files_that_cannot_be_read_are_named(server: CcmpServer, tmp_path: Path) -> None:
    missing = tmp_path / "nothing.pem"
    url = server.url.replace("http:", "https:")
    code, out, err = await cli(url, "--cafile", str(missing), "confs")
    assert code == 2 and out == ""
    assert err.startswith(f"error: cannot use CA file {missing}:"), err
    code, out, err = await cli(server, "create", "--info", str(tmp_path / "none.xml"))
    assert code == 2 and out == "" and f"cannot read {tmp_path / 'none.xml'}" in err
    bad = tmp_path / "bad.xml"
    bad.write_text('<!DOCTYPE x [<!ENTITY a "b">]><x>&a;</x>')
    code, out, err = await cli(server, "update", "xcon:c@example.com", "--info", str(bad))
    assert code == 2 and out == "" and f"cannot read {bad}" in err, err


async def test_help_needs_no_server_and_runs_as_a_module() -> None:
    code, out, err = await run_client_module("--url", "http://127.0.0.1:1/", "show", "--help")
    assert code == 0, err
    assert b"conf-uri: the URI phones dial" in out


async def test_mute_and_unmute_show_on_every_endpoint(server: CcmpServer, tmp_path: Path) -> None:
    conf, _ = await create_board(server, tmp_path)
    code, out, _ = await cli(server, *PIN, "users", conf)
    _, bo, cy, _ = re.findall(r"^  user (\S+)", out, re.M)
    # Cy's first endpoint has an untyped medium 7 (taken as its audio), the second none yet:
    # the client adds medium 1, typed audio so that readers know what was muted.
    code, out, err = await cli(server, *PIN, "mute", conf, cy)
    assert code == 0, err
    code, out, err = await cli(server, *PIN, "user", conf, cy)
    assert out.endswith(
        f'  user {cy} "Cy"\n'
        "    endpoint sip:cy@example.com alerting dialed-out #7=recvonly(muted)\n"
        "    endpoint sip:cy2@example.com dialing-out audio=recvonly(muted)\n"
    ), out
    code, out, err = await cli(server, *PIN, "unmute", conf, cy)
    assert code == 0, err
    code, out, err = await cli(server, *PIN, "user", conf, cy)
    assert out.count("=sendrecv\n") == 2 and "muted" not in out, out
    # An explicit media id is set as given; its type is not known, so the id names it.
    code, out, err = await cli(server, *PIN, "mute", conf, bo, "--media-id", "9")
    assert code == 0, err
    code, out, err = await cli(server, *PIN, "user", conf, bo)
    assert out.endswith(" disconnected(booted) dialed-out #9=recvonly(muted)\n"), out


async def test_refused_preliminary_requests_are_ccmp_errors(
    server: CcmpServer, tmp_path: Path
) -> None:
    conf, _ = await create_board(server, tmp_path)
    code, out, _ = await cli(server, *PIN, "users", conf)
    nobody_yet = re.findall(r"^  user (\S+)", out, re.M)[3]
    # mute reads the user first; the server's refusal is a CCMP error (exit 1) naming the step
    code, out, err = await cli(server, *PIN, "mute", conf, "xcon-userid:ghost@example.com")
    assert (code, out) == (1, ""), err
    assert err.startswith("CCMP error 420: User Not Found"), err
    assert "(when reading user xcon-userid:ghost@example.com to find its endpoints)" in err
    code, out, err = await cli(server, *PIN, "mute", conf, nobody_yet)
    assert (code, out) == (2, ""), err
    assert err == f"error: user {nobody_yet} has no endpoint whose media could be set\n"
    # create --title asks the server its domain first (RFC 6503 s4.3)
    code, out, err = await cli(server, "create", "--title", "X", user="mallory")
    assert (code, out) == (1, ""), err
    assert err.startswith("CCMP error 424") and "(when asking the server its domain)" in err
