"""The process's configuration: documented frozen dataclasses, built from the command line.

Nothing in the project reads configuration from globals or the environment; ``focus.app``
receives a :class:`FocusSettings` and passes the parts on to each front end.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

DEFAULT_CCMP_PORT = 8080
DEFAULT_DOMAIN = "localhost"


class SettingsError(ValueError):
    """A setting given by the operator is unusable; the message says which and why."""


@dataclass(frozen=True, slots=True)
class HostPort:
    """A listen address. ``port`` 0 asks the kernel for a free port."""

    host: str
    port: int

    @classmethod
    def parse(cls, text: str, *, default_port: int) -> HostPort:
        """Read ``HOST:PORT``, ``HOST``, ``:PORT`` or ``[V6]:PORT``."""
        text = text.strip()
        if not text:
            raise SettingsError("empty listen address")
        if text.startswith("["):
            end = text.find("]")
            if end < 0:
                raise SettingsError(f"unclosed IPv6 reference in {text!r}")
            host, rest = text[1:end], text[end + 1 :]
            if rest and not rest.startswith(":"):
                raise SettingsError(f"junk after IPv6 reference in {text!r}")
            port_text = rest[1:] if rest else ""
        elif text.count(":") == 1:
            host, port_text = text.split(":")
        elif ":" in text:
            raise SettingsError(f"write IPv6 addresses as [ADDR]:PORT, not {text!r}")
        else:
            host, port_text = text, ""
        if not port_text:
            port = default_port
        else:
            if not port_text.isdigit() or not 0 <= int(port_text) <= 65535:
                raise SettingsError(f"invalid port {port_text!r} in {text!r}")
            port = int(port_text)
        return cls(host or "127.0.0.1", port)

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"


@dataclass(frozen=True, slots=True)
class FocusSettings:
    """Everything ``python -m focus serve`` needs.

    state_dir:      where the SQLite file (conferences, accounts, versions) lives.
    domain:         the host part of generated XCON-URIs and XCON-USERIDs.
    ccmp_listen:    the CCMP HTTP(S) listener; CCMP is served at ``ccmp_path``.
    tls_cert/key:   PEM files; when both are given CCMP is served over HTTPS only.
    blueprint_dir:  extra operator blueprints (conference-info XML files) beside the bundled ones.
    log_level:      the logging level name for the whole process.
    """

    state_dir: Path
    domain: str = DEFAULT_DOMAIN
    ccmp_listen: HostPort = HostPort("127.0.0.1", DEFAULT_CCMP_PORT)
    ccmp_path: str = "/ccmp"
    tls_cert: Path | None = None
    tls_key: Path | None = None
    blueprint_dir: Path | None = None
    log_level: str = "INFO"

    def __post_init__(self) -> None:
        if (self.tls_cert is None) != (self.tls_key is None):
            raise SettingsError("--tls-cert and --tls-key go together")
        for path in (self.tls_cert, self.tls_key):
            if path is not None and not path.is_file():
                raise SettingsError(f"no such file: {path}")
        if self.blueprint_dir is not None and not self.blueprint_dir.is_dir():
            raise SettingsError(f"no such blueprint directory: {self.blueprint_dir}")
        if not isinstance(logging.getLevelName(self.log_level.upper()), int):
            raise SettingsError(f"unknown log level {self.log_level!r}")
        if not self.ccmp_path.startswith("/"):
            raise SettingsError(f"the CCMP path must start with '/', not {self.ccmp_path!r}")
