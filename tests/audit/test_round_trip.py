"""Round trip: every record type decodes back from its own line, field for field."""
from __future__ import annotations

import pytest

from audit.records import DamageFound, ModelDecided, RecordError
from tests.fakes import at


def test_from_dict_reads_the_tuples_to_dict_leaves_as_tuples():
    """Found by test_from_dict_reads_what_to_dict_writes: `to_dict()` keeps a tuple field a tuple
    (orjson writes it as an array), and `from_dict` refused anything but a list ("`symbols` is
    tuple, not an array"), so no record with a tuple field came back from its own dict."""
    decided = ModelDecided(model="M", cycle_timestamp=at("2000-01-01T00:00:00+00:00"),
                           capital_share=0.0, as_of=None, symbols=("SPY",), input_sha256="",
                           scores={}, target_weights={}, final_weights={},
                           risk_checks=({"check": "x"},), reason="", hold=False)
    assert ModelDecided.from_dict(decided.to_dict()) == decided
    damage = DamageFound(message="m", file="orders.jsonl", lines=(3, 4))
    assert DamageFound.from_dict(damage.to_dict()) == damage
    with pytest.raises(RecordError, match="`lines` is str, not an array"):
        DamageFound.from_dict({**damage.to_dict(), "lines": "3,4"})
