"""The worker's collector settings (runtime/gc_tuning.py, WUGUAN_GC_YOUNG_THRESHOLD)."""
from __future__ import annotations

import gc

import pytest

from services.common.config import ConfigError, Settings
from services.common.runtime.gc_tuning import _on_collection, observe_pauses, tune_collector
from services.common.runtime.metrics import GC_PAUSE_SECONDS


@pytest.fixture
def restored_collector():
    thresholds, callbacks = gc.get_threshold(), list(gc.callbacks)
    yield
    gc.unfreeze()
    gc.set_threshold(*thresholds)
    gc.callbacks[:] = callbacks


def test_a_worker_freezes_what_it_loaded_and_scans_the_young_generation_less_often(restored_collector):
    gc.unfreeze()
    tune_collector(50_000)
    assert gc.get_threshold()[0] == 50_000
    assert gc.get_freeze_count() > 0


def test_a_one_shot_command_sets_the_collector_as_a_worker_does(restored_collector, monkeypatch, capsys):
    """`wuguan verify` decodes every decision of the log, and CPython's young scans every 700
    allocations took a third of its time on a 1M store (docs/performance.md, run 25)."""
    from services.composition import main

    gc.unfreeze()
    gc.set_threshold(700, 10, 10)
    monkeypatch.setenv("WUGUAN_API_SECRET", "s" * 32)
    assert main(["api-token", "--sub", "ops", "--role", "finance", "--ttl", "60"]) == 0
    assert gc.get_threshold()[0] == 50_000 and gc.get_freeze_count() > 0
    monkeypatch.setenv("WUGUAN_GC_YOUNG_THRESHOLD", "80000")  # the way back (0) and any other setting apply too
    assert main(["api-token", "--sub", "ops", "--role", "finance", "--ttl", "60"]) == 0
    assert gc.get_threshold()[0] == 80_000
    monkeypatch.setenv("WUGUAN_GC_YOUNG_THRESHOLD", "-1")
    assert main(["api-token", "--sub", "ops", "--role", "finance", "--ttl", "60"]) != 0
    assert "WUGUAN_GC_YOUNG_THRESHOLD" in capsys.readouterr().err


def test_zero_keeps_cpythons_settings(restored_collector):
    gc.unfreeze()
    gc.set_threshold(700, 10, 10)
    tune_collector(0)
    assert gc.get_threshold() == (700, 10, 10) and gc.get_freeze_count() == 0


def test_every_collection_pause_is_measured_by_generation(restored_collector):
    tune_collector(0)
    tune_collector(0)  # once only, however often it is called
    assert gc.callbacks.count(_on_collection) == 1
    full = GC_PAUSE_SECONDS.labels("test-pauses", "2")
    observe_pauses("test-pauses")  # what earlier collections left
    before = full._sum.get(), sum(b.get() for b in full._buckets)
    gc.collect()
    assert sum(b.get() for b in full._buckets) == before[1]  # not inside the collector's callback
    observe_pauses("test-pauses")
    assert sum(b.get() for b in full._buckets) == before[1] + 1 and full._sum.get() > before[0]


def test_the_setting_is_read_and_checked():
    assert Settings.from_env({}).gc_young_threshold == 50_000
    assert Settings.from_env({"WUGUAN_GC_YOUNG_THRESHOLD": "0"}).gc_young_threshold == 0
    with pytest.raises(ConfigError, match="WUGUAN_GC_YOUNG_THRESHOLD"):
        Settings.from_env({"WUGUAN_GC_YOUNG_THRESHOLD": "-1"})
