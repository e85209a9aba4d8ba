"""Extract the CCMP example messages of RFC 6503 s6, RFC 6504 and the seed draft into files.

Run from the repository root: `python tests/vectors/ccmp/extract.py`.  Each message becomes
`<doc>/<section>-<n>-<request|response>.xml`, the text exactly as printed (page furniture
removed, common indentation removed).  The files are committed; tests read them as data.
"""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[2]
SOURCES = {
    "rfc6503": ROOT.parent / "shared" / "specs" / "rfc6503.txt",
    "rfc6504": ROOT.parent / "shared" / "specs" / "rfc6504.txt",
    "seed-draft-xcon-examples-00": ROOT.parent / "shared" / "seeds" / "000_b4d46fcf0d063865.txt",
}
_FURNITURE = re.compile(r"^(Barnes, et al\.|RFC 650[34] |Internet-Draft |\f)")
_SECTION = re.compile(r"^(\d+(?:\.\d+)+)\.?\s+\S")
_TYPO = re.compile(r"<(/?)xcon:\s+")
_END = re.compile(r"</ccmp:ccmp(Request|Response)>\s*$")


def _starts_message(lines: list[str], i: int) -> bool:
    """Whether a CCMP message (with or without an XML declaration) starts at line i."""
    line = lines[i].strip()
    if line.startswith(("<ccmp:ccmpRequest", "<ccmp:ccmpResponse")):
        return not lines[i - 1].strip().startswith("<?xml")
    if not line.startswith("<?xml"):
        return False
    rest = (ln.strip() for ln in lines[i + 1 :] if ln.strip())
    return next(rest, "").startswith(("<ccmp:ccmpRequest", "<ccmp:ccmpResponse"))


def extract(text: str) -> list[tuple[str, str, str]]:
    """(section, kind, xml) for each CCMP message in `text`."""
    lines = [ln for ln in text.splitlines() if not _FURNITURE.match(ln)]
    out: list[tuple[str, str, str]] = []
    section = "0"
    i = 0
    while i < len(lines):
        line = lines[i]
        m = _SECTION.match(line)
        if m:
            section = m.group(1)
        if _starts_message(lines, i):
            block = [line]
            j = i + 1
            while j < len(lines) and not _END.search(lines[j]):
                block.append(lines[j])
                j += 1
            if j < len(lines):
                block.append(lines[j])
                body = "\n".join(block)
                if "ccmpRequest" in body or "ccmpResponse" in body:
                    kind = "request" if "<ccmp:ccmpRequest" in body else "response"
                    # Normalise blank runs left by removed page furniture.
                    body = re.sub(r"\n\s*\n(\s*\n)+", "\n\n", body)
                    out.append((section, kind, textwrap.dedent(body).strip() + "\n"))
            i = j
        i += 1
    return out


def main() -> None:
    for name, path in SOURCES.items():
        target = HERE / name
        target.mkdir(exist_ok=True)
        counts: dict[str, int] = {}
        for section, kind, xml in extract(path.read_text()):
            n = counts[section] = counts.get(section, 0) + 1
            (target / f"{section}-{n:02d}-{kind}.xml").write_text(xml)
            repaired = _TYPO.sub(r"<\1xcon:", xml)
            if repaired != xml:
                # The draft prints "<xcon: allowed-users-list>", which is not well-formed;
                # the raw file tests our 400, the repaired one the flow.
                (target / f"{section}-{n:02d}-{kind}.repaired.xml").write_text(repaired)


if __name__ == "__main__":
    main()
