"""The bench's count of rows and index entries per CDR (bench/row_counts.py): a partial index
counts the rows its predicate admits, not every row of its table."""
from __future__ import annotations

from bench.row_counts import per_cdr


def reading(inserted: int, claims: int) -> dict:
    return {"tables": {"events": {"relid": 7, "ins": inserted, "upd": 0, "hot": 0}}, "settled": True,
            "indexes": [{"indrelid": 7, "name": "events_pkey", "partial": False},
                        {"indrelid": 7, "name": "events_claims", "partial": True, "entries": claims}]}


def test_a_partial_index_counts_the_rows_its_predicate_admits():
    counted = per_cdr(reading(10, 4), reading(30, 14), cdrs=10)
    assert counted["rows_per_cdr"] == 2.0
    assert counted["indexes"]["events_pkey"]["entries_per_cdr"] == 2.0
    assert counted["indexes"]["events_claims"] == {"table": "events", "entries_per_cdr": 1.0, "partial": True}
    assert counted["index_entries_per_cdr"] == 3.0
