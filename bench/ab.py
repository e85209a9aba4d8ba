"""Old and new interleaved: run benches against a baseline revision and the working tree in
the same run, alternating, so a change is judged under the same machine load.

    python -m bench.ab --base REV [--rounds N] [BENCH ...]

Each BENCH (``sip``, ``focus``, ``ccmp``, ``notify``, ``mixer``; default all, each with the
short arguments below) runs ``python -m bench.BENCH.run`` first in a checkout of REV (a git
worktree made in a temporary directory and removed afterwards) and then in this tree, and
again for every round; each run's output is printed under a heading naming the tree and the
round. Both trees use the interpreter that runs this script; a package in the current
directory shadows an installed one, so each run measures its own tree's code.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

#: Short runs: a few minutes for all of them on a 2-core machine.
ARGS: dict[str, list[str]] = {
    "sip": ["--calls", "1000", "--dialogs", "500"],
    "focus": ["--calls", "200", "--participants", "50"],
    "ccmp": ["--seconds", "3"],
    "notify": ["--sizes", "10", "100", "1000", "--repeat", "2"],
    "mixer": ["--quick"],
}


def run(tree: Path, bench: str, timeout: float) -> str:
    started = time.monotonic()
    try:
        done = subprocess.run(
            [sys.executable, "-m", f"bench.{bench}.run", *ARGS[bench]],
            cwd=tree,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        out = done.stdout + (
            f"\n[exit {done.returncode}]\n{done.stderr[-2000:]}" if done.returncode else ""
        )
    except subprocess.TimeoutExpired:
        out = f"[timed out after {timeout:.0f} s]"
    return f"{out.rstrip()}\n[{time.monotonic() - started:.0f} s]"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base", required=True, help="the baseline revision (e.g. a commit)")
    parser.add_argument("--rounds", type=int, default=2, help="old/new pairs per bench (2)")
    parser.add_argument("--timeout", type=float, default=600.0, help="per run, seconds")
    parser.add_argument("benches", nargs="*", help=f"some of {', '.join(ARGS)} (all)")
    args = parser.parse_args(argv)
    unknown = set(args.benches) - set(ARGS)
    if unknown:
        parser.error(f"unknown bench: {', '.join(sorted(unknown))}")
    with tempfile.TemporaryDirectory(prefix="bench-ab-") as tmp:
        old = Path(tmp) / "base"
        subprocess.run(
            ["git", "worktree", "add", "--detach", "-q", str(old), args.base], cwd=ROOT, check=True
        )
        try:
            for bench in args.benches or list(ARGS):
                for round_ in range(1, args.rounds + 1):
                    for label, tree in (("old", old), ("new", ROOT)):
                        print(f"===== {bench} round {round_} {label} ({tree})", flush=True)
                        print(run(tree, bench, args.timeout), flush=True)
        finally:
            subprocess.run(
                ["git", "worktree", "remove", "--force", str(old)], cwd=ROOT, check=False
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
