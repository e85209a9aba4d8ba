"""Extracts the msc-mixer schema (RFC 6505 s5) and the framework attributes schema it imports
(RFC 6230 Appendix A.1) into mediactrl/mixer/schema/.

Run from the repository root:  python tests/mediactrl/mixer/extract_schemas.py

The text is taken verbatim (page breaks removed, the RFC's indentation dropped) with the
corrections listed in :data:`CORRECTIONS`, each one explained; test_mixer_schema checks that the
stored files are exactly this extraction.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

from tests.paths import ROOT

SPECS = Path("/work/shared/specs")
TARGET = ROOT / "mediactrl" / "mixer" / "schema"

# (file, wrong text, right text, why)
CORRECTIONS: list[tuple[str, str, str, str]] = [
    (
        "mixer.xsd",
        '<xsd:element ref="subscribe" />',
        '<xsd:element ref="subscribe" minOccurs="0" maxOccurs="1" />',
        "RFC 6505 s4.2.1.2 says <subscribe> in <modifyconference> 'is optional' like its "
        "siblings, and the sibling <createconference> type has minOccurs=0; the schema text "
        "omits minOccurs there, which would make every modifyconference without it invalid.",
    ),
]


def _pages_removed(text: str, footer: str, header: str) -> list[str]:
    out: list[str] = []
    for line in text.split("\n"):
        if re.match(footer, line) or re.match(header, line) or line.startswith("\f"):
            continue
        out.append(line)
    return out


def _schema(lines: list[str], first: int) -> str:
    """From the '<?xml' line at ``first`` to '</xsd:schema>', dedented, blank lines dropped."""
    indent = len(lines[first]) - len(lines[first].lstrip())
    block: list[str] = []
    for line in lines[first:]:
        if not line.strip():
            continue
        block.append(line[indent:] if line[:indent].strip() == "" else line.lstrip())
        if line.strip() == "</xsd:schema>":
            break
    return "\n".join(block) + "\n"


def _rfc_schema(
    number: int, authors: str, date: str, starts: Callable[[list[str], int], bool]
) -> str:
    """The schema in RFC ``number`` (page footers name ``authors``, headers ``date``) that
    begins at the first '<?xml' line ``starts(lines, index)`` accepts."""
    lines = _pages_removed(
        (SPECS / f"rfc{number}.txt").read_text(encoding="ascii"),
        rf"^{authors}, et al\. .*\[Page \d+\]$",
        rf"^RFC {number} .*{date}$",
    )
    first = next(
        i for i, line in enumerate(lines) if line.strip().startswith("<?xml") and starts(lines, i)
    )
    return _schema(lines, first)


def extract() -> dict[str, str]:
    """File name -> content of the two schemas, corrections applied."""
    files = {
        "mixer.xsd": _rfc_schema(
            6505,
            "McGlashan",
            "March 2012",
            lambda lines, i: "msc-mixer" in "".join(lines[i : i + 3]),
        ),
        "framework.xsd": _rfc_schema(
            6230, "Boulton", "May 2011", lambda lines, i: "encoding" in lines[i]
        ),
    }
    for name, wrong, right, _why in CORRECTIONS:
        assert files[name].count(wrong) == 1, f"{name}: correction target not found once"
        files[name] = files[name].replace(wrong, right)
    return files


def main() -> None:
    TARGET.mkdir(parents=True, exist_ok=True)
    for name, content in extract().items():
        (TARGET / name).write_text(content, encoding="utf-8")
        print(f"wrote {TARGET / name}")


if __name__ == "__main__":
    main()
