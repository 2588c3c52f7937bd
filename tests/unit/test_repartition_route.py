"""The repartition route's messages (issue 13): the relay groups a page's routed decisions by key,
in order, and the reader turns a message back into one input per decision, whatever the grouping."""
from __future__ import annotations

import orjson
import pytest

from schemas.errors import InvalidEvent
from schemas.registry import Repartition
from services.common.runtime.decision_inputs import decode_repartitioned
from services.common.runtime.relay import NOTES_PER_MESSAGE, note_sql, routed_messages

TOPIC = "wuguan.billing_guard.switch-sequence"


def decision(n: int) -> dict:
    return {"decisionId": f"00000000-0000-5000-8000-{n:012d}", "businessTime": "2026-12-01T10:00:00+08:00",
            "service": "billing_guard", "correlationId": None, "causedBy": [f"input-{n}"],
            "decisionType": "guard.CdrRated", "payload": {"switchId": f"SW{n % 2}", "sequenceNumber": n}}


def test_a_page_becomes_one_message_per_key_with_its_decisions_in_order():
    page = [(f"SW{n % 2}", orjson.dumps(decision(n)).decode()) for n in range(6)]
    messages = routed_messages(page)
    assert [key for key, _ in messages] == [b"SW0", b"SW1"]
    assert [[d["payload"]["sequenceNumber"] for d in orjson.loads(value)] for _, value in messages] == [[0, 2, 4],
                                                                                                      [1, 3, 5]]


def test_a_key_with_many_decisions_is_split_into_bounded_messages_in_order():
    page = [("SW0", orjson.dumps(decision(n * 2)).decode()) for n in range(NOTES_PER_MESSAGE + 3)]
    messages = routed_messages(page)
    assert [len(orjson.loads(value)) for _, value in messages] == [NOTES_PER_MESSAGE, 3]
    numbers = [d["payload"]["sequenceNumber"] for _, value in messages for d in orjson.loads(value)]
    assert numbers == sorted(numbers)


def test_each_decision_of_a_message_is_an_input_of_its_own_named_by_the_decision():
    events = decode_repartitioned(TOPIC, orjson.dumps([decision(1), decision(3)]))
    assert [e.event_id for e in events] == [decision(1)["decisionId"], decision(3)["decisionId"]]
    assert [e.causation_id for e in events] == ["input-1", "input-3"]
    assert all(e.event_type == TOPIC and e.event_time.utcoffset() is not None for e in events)
    # The grouping changes nothing: one decision alone reads as the same input.
    assert decode_repartitioned(TOPIC, orjson.dumps(decision(3)))[0] == events[1]


def test_a_message_that_is_not_json_is_refused_with_a_code():
    with pytest.raises(InvalidEvent) as refused:
        decode_repartitioned(TOPIC, b"not json")
    assert refused.value.code == "malformed_json"


@pytest.mark.parametrize("bad", [{}, {"decisionId": "x"}, 1])
def test_an_element_that_is_not_a_stored_decision_is_refused_alone(bad):
    """The message is dead-lettered for it, but the good elements beside it are still decided."""
    events = decode_repartitioned(TOPIC, orjson.dumps([decision(1), bad, decision(3)]))
    assert [type(e).__name__ for e in events] == ["InputEvent", "InvalidEvent", "InputEvent"]
    assert events[1].code == "envelope_invalid"


@pytest.mark.parametrize("field", ["switchId'); DROP TABLE events; --", "switch id", ""])
def test_a_note_field_that_is_not_a_plain_name_is_refused_before_it_reaches_sql(field):
    route = Repartition(TOPIC, frozenset({"guard.CdrRated"}), "switchId", ("sequenceNumber", field))
    with pytest.raises(ValueError, match="is not a plain field name"):
        note_sql(route)
    assert "'sequenceNumber', payload->'payload'->'sequenceNumber'" in note_sql(route._replace(note_fields=("sequenceNumber",)))
