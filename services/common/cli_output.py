"""How a `wuguan` command prints a list: a table for people, --json or --csv for machines.

One function serves every listing command, so they agree on the three forms. JSON is a list of
objects (money stays integer fen); CSV has a header row; the table is rich's, as wide as the
terminal (240 columns when piped).
"""
from __future__ import annotations

import contextlib
import csv
import sys
from collections.abc import Iterable, Sequence

import orjson
from rich.console import Console
from rich.table import Table

FORMATS = ("table", "json", "csv")
PIPED_WIDTH = 240


def add_format_options(command) -> None:
    """--json and --csv on a listing command (the default is a table)."""
    group = command.add_mutually_exclusive_group()
    group.add_argument("--json", dest="output", action="store_const", const="json", help="a JSON list on standard output")
    group.add_argument("--csv", dest="output", action="store_const", const="csv", help="CSV on standard output")
    command.set_defaults(output="table")


def emit(rows: Iterable[dict], columns: Sequence[str], output: str = "table", title: str | None = None,
         right: Sequence[str] = (), labels: dict | None = None) -> int:
    """Print rows (dicts keyed by `columns`); returns how many. `right`: columns aligned right
    (numbers); `labels`: table headings for columns, when the key is not for people."""
    rows = list(rows)
    if output == "json":
        sys.stdout.write(orjson.dumps([{c: r.get(c) for c in columns} for r in rows], option=orjson.OPT_INDENT_2).decode())
        sys.stdout.write("\n")
        return len(rows)
    if output == "csv":
        writer = csv.writer(sys.stdout)
        writer.writerow(columns)
        for r in rows:
            writer.writerow(["" if r.get(c) is None else r.get(c) for c in columns])
        return len(rows)
    table = Table(title=title, title_justify="left")
    for c in columns:
        table.add_column((labels or {}).get(c, c), justify="right" if c in right else "left", overflow="fold")
    for r in rows:
        table.add_row(*("" if r.get(c) is None else str(r.get(c)) for c in columns))
    # Piped into a file or grep, a row stays one line: 80 columns would fold ids across lines.
    Console(highlight=False, width=None if sys.stdout.isatty() else PIPED_WIDTH).print(table)
    return len(rows)


def working(what: str):
    """A spinner with the elapsed time on standard error while a long command runs (rebuild,
    verify, replay, sample), only on a terminal: piped or in CI, nothing is drawn."""
    if not sys.stderr.isatty():
        return contextlib.nullcontext()
    return Console(stderr=True).status(f"{what}…")
