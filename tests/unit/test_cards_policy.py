"""The cards policy loader: validated at start, a bad field names itself (C.REPLACE_NOW, C.STOCK)."""
from __future__ import annotations

import json

import pytest

from services.cards.worker import load
from services.common.config import Settings
from services.common.errors import ConfigError

from harness.cards import DEFAULT_POLICY, policy


def write(tmp_path, **changes):
    document = json.loads(DEFAULT_POLICY.read_text())
    document.update(changes)
    path = tmp_path / "cards.json"
    path.write_text(json.dumps(document))
    return path


def test_bundled_policy_loads_and_is_versioned():
    loaded = policy()
    assert loaded.version.startswith("cards-2026.11-1@")
    assert "chargeDeductedWithoutService" in loaded.rules.replaceable_problems
    assert "other" not in loaded.rules.replaceable_problems


def test_worker_loader_reads_WUGUAN_POLICY_DIR(tmp_path, monkeypatch):
    write(tmp_path, maxFaultCreditMinor=1)
    monkeypatch.setenv("WUGUAN_POLICY_DIR", str(tmp_path))
    assert load(Settings.from_env()).rules.max_fault_credit_minor == 1


@pytest.mark.parametrize(
    "changes, field",
    [
        ({"replaceableProblems": ["lostCard"]}, "replaceableProblems.0"),
        ({"replaceableProblems": []}, "replaceableProblems"),
        ({"maxFaultCreditMinor": -1}, "maxFaultCreditMinor"),
        ({"maxFaultCreditMinor": 1.5}, "maxFaultCreditMinor"),
        ({"minReplacementValidityDays": "30"}, "minReplacementValidityDays"),
        ({"surprise": True}, "surprise"),
    ],
)
def test_a_bad_policy_is_refused_naming_the_field(tmp_path, changes, field):
    with pytest.raises(ConfigError) as err:
        policy(write(tmp_path, **changes))
    assert err.value.field.endswith(field)
