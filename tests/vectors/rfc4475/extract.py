"""Extract the RFC 4475 torture-test messages, byte for byte, from the RFC's Appendix A.

Appendix A holds a base64-encoded gzipped tar of one ``<name>.dat`` file per message of
section 3. This script decodes it (the same selection of lines as the RFC's own Perl script:
the lines between the archive markers that consist of one non-blank word) and writes each
``.dat`` file next to itself. ``test.dat`` of the archive is no test case and is skipped.

Run: python tests/vectors/rfc4475/extract.py [path/to/rfc4475.txt]
"""

from __future__ import annotations

import base64
import gzip
import io
import re
import sys
import tarfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
DEFAULT_RFC = Path("/work/shared/specs/rfc4475.txt")
SKIP = {"test.dat"}


def archive_bytes(rfc_text: str) -> bytes:
    inside = False
    chunks: list[str] = []
    for line in rfc_text.splitlines():
        if "-- BEGIN MESSAGE ARCHIVE --" in line:
            inside = True
            continue
        if "-- END MESSAGE ARCHIVE --" in line:
            break
        if inside and re.fullmatch(r"\s*\S+\s*", line):
            chunks.append(line.strip())
    return base64.b64decode("".join(chunks))


def extract(rfc_path: Path, out_dir: Path) -> list[str]:
    data = gzip.decompress(archive_bytes(rfc_path.read_text(encoding="ascii")))
    names: list[str] = []
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        for member in tar.getmembers():
            name = Path(member.name).name
            if not member.isfile() or not name.endswith(".dat") or name in SKIP:
                continue
            handle = tar.extractfile(member)
            assert handle is not None
            (out_dir / name).write_bytes(handle.read())
            names.append(name)
    return sorted(names)


if __name__ == "__main__":
    rfc = Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_RFC
    written = extract(rfc, HERE)
    print(f"{len(written)} messages: {' '.join(written)}")
