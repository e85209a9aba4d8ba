"""``python -m focus``: run the conferencing server, or manage its CCMP accounts.

Commands (other tools and checks rely on these names; ``--help`` on each documents all options):

    python -m focus serve --state-dir DIR --ccmp-listen HOST:PORT
        [--sip-listen HOST:PORT] [--profile NAME] [--media-server SIP-URI]
    python -m focus user add NAME --role ROLE --password-stdin --state-dir DIR [--profile NAME]
    python -m focus user set-password NAME --password-stdin --state-dir DIR [--profile NAME]
    python -m focus user list --state-dir DIR
    python -m focus user remove NAME --state-dir DIR
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from focus.settings import (
    DEFAULT_CCMP_PORT,
    DEFAULT_DOMAIN,
    DEFAULT_RTP_PORTS,
    DEFAULT_SIP_PORT,
    FocusSettings,
    HostPort,
    SettingsError,
    SipProfile,
    parse_port_range,
)

ROLES = ("administrator", "moderator", "user", "participant", "observer", "none")


def _port_range(text: str) -> tuple[int, int]:
    try:
        return parse_port_range(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _add_state_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--state-dir",
        type=Path,
        default=Path("state"),
        help="directory of the SQLite state file (created if missing; default: ./state)",
    )
    parser.add_argument(
        "--domain",
        default=DEFAULT_DOMAIN,
        help="host part of XCON-URIs and XCON-USERIDs (default: %(default)s)",
    )


def _add_password_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--password-stdin",
        action="store_true",
        required=True,
        help="read the password from the first line of standard input",
    )
    parser.add_argument(
        "--profile",
        default="default",
        metavar="NAME",
        help="SIP profile whose digest realm (its domain) the account's SIP credentials are "
        "made for: the account signs in over SIP with its name and this password "
        "(default: %(default)s)",
    )
    _add_state_options(parser)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m focus",
        description="Standards-based SIP conferencing server (RFC 4579 focus, RFC 6503 CCMP).",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = sub.add_parser("serve", help="run the server until SIGTERM or SIGINT")
    _add_state_options(serve)
    serve.add_argument(
        "--ccmp-listen",
        default=f"127.0.0.1:{DEFAULT_CCMP_PORT}",
        metavar="HOST:PORT",
        help="CCMP listen address, served at /ccmp (default: %(default)s; port 0 picks one)",
    )
    serve.add_argument("--tls-cert", type=Path, help="PEM certificate: serve CCMP over HTTPS")
    serve.add_argument("--tls-key", type=Path, help="PEM private key for --tls-cert")
    serve.add_argument(
        "--blueprint-dir",
        type=Path,
        help="directory of extra blueprints (conference-info XML files) to offer",
    )
    serve.add_argument(
        "--profile",
        default="default",
        metavar="NAME",
        help="SIP profile: sip_profiles/NAME.toml or a path to a .toml file (SIP domain, "
        "factory URI, conference URI pattern, timers, transports, listen address; "
        "default: %(default)s)",
    )
    serve.add_argument(
        "--sip-listen",
        metavar="HOST:PORT",
        help="SIP listen address, UDP and TCP (default: the profile's, 127.0.0.1:5060 in the "
        "default profile; port 0 picks free ports)",
    )
    serve.add_argument(
        "--media-server",
        metavar="SIP-URI",
        help="an external RFC 6230/6505 media server (e.g. sip:ms@127.0.0.1:5090); "
        "default: start the bundled media server on loopback ports",
    )
    serve.add_argument(
        "--rtp-ports",
        type=_port_range,
        default=DEFAULT_RTP_PORTS,
        metavar="LOW-HIGH",
        help="the bundled media server's RTP ports (default 16384-32767, below the kernel's "
        "ephemeral ports)",
    )
    serve.add_argument(
        "--exempt-administrators-from-passwords",
        action="store_true",
        help="let administrator accounts act on password-protected conferences without the "
        "conference password (off: RFC 6503 s5.1 wants it in every request to them)",
    )
    serve.add_argument(
        "--log-level",
        default="INFO",
        help="DEBUG, INFO, WARNING or ERROR (default: %(default)s)",
    )

    user = sub.add_parser("user", help="manage the accounts that may use CCMP")
    user_sub = user.add_subparsers(dest="user_command", required=True, metavar="ACTION")
    add = user_sub.add_parser("add", help="create an account and print its XCON-USERID")
    add.add_argument("name", help="account name (letters, digits, . _ ~ + -)")
    add.add_argument("--role", required=True, choices=ROLES, help="RFC 6501 role")
    _add_password_options(add)
    password = user_sub.add_parser(
        "set-password", help="replace an account's password (CCMP and SIP credentials)"
    )
    password.add_argument("name")
    _add_password_options(password)
    listing = user_sub.add_parser("list", help="list accounts with their roles")
    _add_state_options(listing)
    remove = user_sub.add_parser("remove", help="delete an account")
    remove.add_argument("name")
    _add_state_options(remove)
    return parser


def _serve(args: argparse.Namespace) -> int:
    from focus.app import run

    profile = SipProfile.load(args.profile)
    sip_listen = (
        HostPort.parse(args.sip_listen, default_port=DEFAULT_SIP_PORT)
        if args.sip_listen is not None
        else profile.listen
    )
    settings = FocusSettings(
        profile=profile,
        sip_listen=sip_listen,
        media_server=args.media_server,
        state_dir=args.state_dir,
        domain=args.domain,
        ccmp_listen=HostPort.parse(args.ccmp_listen, default_port=DEFAULT_CCMP_PORT),
        tls_cert=args.tls_cert,
        tls_key=args.tls_key,
        blueprint_dir=args.blueprint_dir,
        log_level=args.log_level,
        rtp_ports=args.rtp_ports,
        exempt_administrators_from_passwords=args.exempt_administrators_from_passwords,
    )
    logging.basicConfig(
        level=settings.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    asyncio.run(run(settings))
    return 0


def _user(args: argparse.Namespace) -> int:
    from focus.core.accounts import AccountDirectory, add_account
    from focus.core.database import database_path, open_database

    password = ""
    if args.user_command in ("add", "set-password"):
        password = sys.stdin.readline().rstrip("\r\n")
        if not password:
            print("error: no password on standard input", file=sys.stderr)
            return 2
    if args.user_command == "add":
        realm = SipProfile.load(args.profile).digest_realm
        account = add_account(
            args.state_dir, args.name, args.role, password, domain=args.domain, sip_realm=realm
        )
        print(account.user_id)
        return 0
    conn = open_database(database_path(args.state_dir))
    try:
        directory = AccountDirectory(conn, args.domain)
        if args.user_command == "set-password":
            realm = SipProfile.load(args.profile).digest_realm
            directory.set_password(args.name, password, sip_realm=realm)
        elif args.user_command == "list":
            for account in directory.all():
                print(f"{account.name}\t{account.role.value}\t{account.user_id}")
        else:
            directory.remove(args.name)
    finally:
        conn.close()
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from focus.core.errors import CoreError

    try:
        if args.command == "serve":
            return _serve(args)
        return _user(args)
    except (SettingsError, CoreError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
