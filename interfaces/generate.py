"""Write the published interface documents from the code.

    python -m interfaces.generate           # rewrite docs/asyncapi.yaml, docs/openapi.json, docs/rules.md
    python -m interfaces.generate --check   # exit 1 and name the stale files (tests, CI)
"""
from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

from . import asyncapi_doc, openapi_doc, rules_doc

ROOT = Path(__file__).resolve().parents[1]
DOCUMENTS: dict[str, Callable[[], bytes]] = {
    asyncapi_doc.PATH: asyncapi_doc.render,
    openapi_doc.PATH: openapi_doc.render,
    rules_doc.PATH: rules_doc.render,
}


def is_stale(path: str, root: Path = ROOT) -> bool:
    """Whether the committed document differs from what the code generates now."""
    target = root / path
    return not target.is_file() or target.read_bytes() != DOCUMENTS[path]()


def stale(root: Path = ROOT) -> list[str]:
    return [path for path in DOCUMENTS if is_stale(path, root)]


def write(root: Path = ROOT) -> list[str]:
    touched = stale(root)
    for path in touched:
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_bytes(DOCUMENTS[path]())
    return touched


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m interfaces.generate", description=__doc__.split("\n")[0])
    parser.add_argument("--check", action="store_true", help="only report stale documents; exit 1 if any")
    args = parser.parse_args(argv)
    if args.check:
        names = stale()
        for name in names:
            print(f"stale: {name}", file=sys.stderr)
        if names:
            print("run: python -m interfaces.generate (or make interfaces)", file=sys.stderr)
            return 1
        print(f"up to date: {', '.join(DOCUMENTS)}")
        return 0
    for name in write():
        print(f"wrote: {name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
