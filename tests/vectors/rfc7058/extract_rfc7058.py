"""Extracts every CFW message of RFC 7058 into data files, in document order.

Run from the repository root:  python tests/vectors/rfc7058/extract_rfc7058.py [path/to/rfc7058.txt]

Each message becomes ``NNN-<section>-<step>.cfw``: the head with CRLF line ends, a blank line,
then the body exactly as printed (dedented, LF line ends).  The RFC's Content-Length values were
counted on a different layout of the same text, so Content-Length is recomputed from the body
written here; the printed value is kept in ``manifest.json`` (``rfc_content_length``).

``manifest.json`` lists, per message: file, section, step, from, to, title, package (the
Control-Package of a CONTROL, else null).  Editorial ellipses ("[..] ... [..]") end a
message.  Page headers and footers are dropped first, with the
blank lines that pad them, so a message broken across pages comes out whole.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
DEFAULT_RFC = Path("/work/shared/specs/rfc7058.txt")

_FOOTER = re.compile(r"^Amirante, et al\. .*\[Page \d+\]$")
_HEADER = re.compile(r"^RFC 7058 .*November 2013$")
_SECTION = re.compile(r"^(\d+(?:\.\d+)*)\.\s{2}\S")
_HEADING = re.compile(
    r"^\s*([A-Z]?\d+)\.\s+(AS\d?|MS|MRB)\s+(->|<-)\s+(AS\d?|MS|MRB)\s+\((.*)\)\s*$"
)
_START = re.compile(r"^(\s*)CFW [A-Za-z0-9.\-+%=/]+ ([A-Z]+(?:-[A-Z]+)?|\d{3})\s*$")


def strip_pages(text: str) -> list[str]:
    """The RFC's lines without page breaks (footer, form feed, header and their padding)."""
    lines = text.replace("\f", "\n\f\n").split("\n")
    out: list[str] = []
    skipping_pad = False
    for line in lines:
        if _FOOTER.match(line):
            while out and not out[-1].strip():
                out.pop()
            skipping_pad = True
            continue
        if line == "\f" or _HEADER.match(line):
            skipping_pad = True
            continue
        if skipping_pad and not line.strip():
            continue
        skipping_pad = False
        out.append(line)
    return out


def extract(rfc_text: str) -> list[dict[str, object]]:
    lines = strip_pages(rfc_text)
    found: list[dict[str, object]] = []
    section = ""
    heading: re.Match[str] | None = None
    i = 0
    while i < len(lines):
        line = lines[i]
        if (sec := _SECTION.match(line)) is not None:
            section = sec.group(1)
        if (head := _HEADING.match(line)) is not None:
            heading = head
        start = _START.match(line)
        if start is None:
            i += 1
            continue
        indent = len(start.group(1))
        block = [line[indent:]]
        i += 1
        in_body = False
        while i < len(lines):
            nxt = lines[i]
            if nxt.strip() and (_HEADING.match(nxt) or _START.match(nxt)):
                break
            if nxt.strip().startswith("[..]"):
                break  # an editorial ellipsis ("[..] skipped for brevity [..]"), not protocol
            shallow = len(nxt) - len(nxt.lstrip()) < indent
            # Inside an XML body the RFC wraps long attributes to the left margin.
            if nxt.strip() and shallow and not in_body:
                break
            in_body = in_body or nxt.lstrip().startswith("<")
            block.append(("" if shallow else nxt[indent:]) + (nxt.lstrip() if shallow else ""))
            i += 1
            if in_body and re.search(r"</(mscmixer|mscivr|mrbpublish|mrbconsumer)>", nxt):
                break  # prose may follow at the same indentation
        while block and not block[-1].strip():
            block.pop()
        head_lines: list[str] = []
        body_lines: list[str] = []
        root_end: str | None = None
        for entry in block:
            if root_end is None and entry.lstrip().startswith("<?xml"):
                body_lines.append(entry)
                continue
            if root_end is None and entry.lstrip().startswith("<"):
                root = re.match(r"\s*<([A-Za-z][\w:.-]*)", entry)
                assert root is not None, entry
                root_end = f"</{root.group(1)}>"
            if root_end is not None:
                body_lines.append(entry)
                # Prose can follow at the message's own indentation: the body ends with its root.
                if root_end in entry:
                    break
            elif entry.strip():
                head_lines.append(entry.rstrip())
        printed_length: int | None = None
        kept_head: list[str] = []
        for entry in head_lines:
            name, _, value = entry.partition(":")
            if name.strip().lower() == "content-length":
                printed_length = int(value.strip())
            else:
                kept_head.append(entry)
        body = "\n".join(entry.rstrip() for entry in body_lines)
        if body:
            body += "\n"
            kept_head.append(f"Content-Length: {len(body.encode())}")
        wire = "\r\n".join(kept_head) + "\r\n\r\n" + body
        package = next(
            (
                e.partition(":")[2].strip()
                for e in kept_head
                if e.lower().startswith("control-package:")
            ),
            None,
        )
        assert heading is not None, f"message without a heading at {block[0]!r}"
        found.append(
            {
                "section": section,
                "step": heading.group(1),
                "from": heading.group(2) if heading.group(3) == "->" else heading.group(4),
                "to": heading.group(4) if heading.group(3) == "->" else heading.group(2),
                "title": heading.group(5),
                "package": package,
                "rfc_content_length": printed_length,
                "wire": wire,
            }
        )
    return found


def main() -> None:
    source = Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_RFC
    messages = extract(source.read_text(encoding="ascii"))
    for old in HERE.glob("*.cfw"):
        old.unlink()
    manifest = []
    for number, message in enumerate(messages, start=1):
        name = f"{number:03d}-{message['section']}-{message['step']}.cfw"
        (HERE / name).write_bytes(str(message.pop("wire")).encode("utf-8"))
        manifest.append({"file": name, **message})
    (HERE / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n", encoding="utf-8")
    print(f"{len(manifest)} messages written to {HERE}")


if __name__ == "__main__":
    main()
