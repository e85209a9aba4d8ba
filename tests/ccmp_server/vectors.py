"""The CCMP example messages kept under tests/vectors/ccmp/ (see extract.py there)."""

from __future__ import annotations

from pathlib import Path

from tests.paths import VECTORS as TEST_VECTORS

VECTORS = TEST_VECTORS / "ccmp"
DOCS = ("rfc6503", "rfc6504", "seed-draft-xcon-examples-00")
# Printed with "<xcon: allowed-users-list>", which no XML parser accepts.
MALFORMED = frozenset(
    {
        "seed-draft-xcon-examples-00/5.1-02-response.xml",
        "seed-draft-xcon-examples-00/5.2-01-request.xml",
    }
)


def vector_files(kind: str) -> list[Path]:
    """Every well-formed vector of `kind` ("request" or "response"), repaired ones included."""
    out = []
    for doc in DOCS:
        for path in sorted((VECTORS / doc).glob(f"*-{kind}*.xml")):
            if f"{doc}/{path.name}" not in MALFORMED:
                out.append(path)
    return out


def vector_id(path: Path) -> str:
    return f"{path.parent.name}/{path.name}"


def load(name: str) -> bytes:
    """A vector by "doc/file.xml"."""
    return (VECTORS / name).read_bytes()
