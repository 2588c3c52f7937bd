"""CSV for every list: money as fen and as yuan (2 decimals by integer arithmetic), times
RFC 3339 with offset, phone numbers masked, and cells that a spreadsheet would run as a formula
neutralised (a leading apostrophe)."""
from __future__ import annotations

import csv
import io

from .money import yuan
from .privacy import masked

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | tuple):
        value = ";".join(str(v) for v in value)
    text = str(value)
    if isinstance(value, str) and text.startswith(FORMULA_START):
        return "'" + text
    return text


def header(names: list[str]) -> list[str]:
    """Money keys (xxxMinor) get a yuan twin column right after them."""
    out = []
    for name in names:
        out.append(name)
        if name.endswith("Minor"):
            out.append(name[: -len("Minor")] + "Yuan")
    return out


def rows_to_csv(items: list[dict], names: list[str], with_header: bool) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    if with_header:
        writer.writerow(header(names))
    for item in items:
        item = masked(item)
        line = []
        for name in names:
            value = item.get(name)
            line.append(cell(value))
            if name.endswith("Minor"):
                line.append(yuan(value) if isinstance(value, int) else "")
        writer.writerow(line)
    return buffer.getvalue()
