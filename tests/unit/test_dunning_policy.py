"""The dunning policy loader refuses unsafe or incomplete policies, naming the field."""
from __future__ import annotations

import json

import pytest

from services.common.errors import ConfigError
from services.common.policy import load_policy
from services.dunning.domain.policy import DunningPolicySchema, build_policy

from harness.dunning import DEFAULT_POLICY


def _write(tmp_path, mutate):
    document = json.loads(DEFAULT_POLICY.read_text())
    mutate(document)
    path = tmp_path / "dunning.json"
    path.write_text(json.dumps(document))
    return path


def _load(path):
    return load_policy(path, DunningPolicySchema(), build_policy)


def test_default_policy_loads_with_a_content_versioned_id():
    loaded = _load(DEFAULT_POLICY)
    assert loaded.version.startswith("dunning-2026.11-2@") and len(loaded.version.split("@")[1]) == 12


def test_DN_FIRST_LETTER_policy_allowing_voice_on_first_offence_is_refused(tmp_path):
    path = _write(tmp_path, lambda d: d["treatments"][1].update(firstOffenceChannel="voice"))
    with pytest.raises(ConfigError) as err:
        _load(path)
    assert "treatments.1.firstOffenceChannel" in str(err.value)
    assert "DN.FIRST_LETTER" in str(err.value)


def test_DN_CREDIT_LEVEL_policy_with_an_uncovered_pair_is_refused(tmp_path):
    path = _write(tmp_path, lambda d: d["treatments"][2].update(creditLevels=["C", "D"]))
    with pytest.raises(ConfigError, match="credit level E with tier silver"):
        _load(path)


def test_wrong_type_names_the_field(tmp_path):
    path = _write(tmp_path, lambda d: d.update(lookbackMonths="twelve"))
    with pytest.raises(ConfigError, match="lookbackMonths"):
        _load(path)


def test_unknown_field_is_refused(tmp_path):
    path = _write(tmp_path, lambda d: d.update(lookbakMonths=3))
    with pytest.raises(ConfigError, match="lookbakMonths"):
        _load(path)


def test_bad_time_zone_names_the_field(tmp_path):
    path = _write(tmp_path, lambda d: d.update(timezone="Mars/Olympus"))
    with pytest.raises(ConfigError, match="timezone"):
        _load(path)


def test_unreadable_json_names_the_file(tmp_path):
    path = tmp_path / "dunning.json"
    path.write_text("{")
    with pytest.raises(ConfigError, match="not valid JSON"):
        _load(path)
