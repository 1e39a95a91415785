"""Items that kill their worker, cannot send their result or never return, on a real cluster.

Each is found by retrying its chunk item by item: under ``on_error="skip"`` it is recorded and
the rest completes; under ``"raise"`` the error names its index and utt_id.
"""

from __future__ import annotations

import json
import logging
import os
import signal

import pytest
from runner_toys import HazardRunner, ToyProvider

from benchmarks.common import spin_item
from espnet3.errors import ItemError
from espnet3.parallel import get_client, parallel_for, parallel_map

CFG = {"n": 40, "scale": 3, "bias": 1}
LOCAL = {"env": "local", "n_workers": 2}


def good(indices, bad):
    return [{"idx": i, "utt_id": f"utt{i:03d}", "y": 3 * i + 1} for i in indices if i not in bad]


@pytest.mark.parametrize(
    ("params", "reason"),
    [
        ({"crash_on": [7]}, "KilledWorker"),
        ({"unpicklable": [7]}, "serialize"),
    ],
    ids=["worker-killed", "unpicklable-result"],
)
def test_skip_records_the_item_at_fault_and_finishes_the_rest(tmp_path, params, reason):
    errors = tmp_path / "errors.jsonl"
    runner = HazardRunner(ToyProvider(CFG, params), on_error="skip", errors_path=errors)
    with get_client(LOCAL):
        results = runner(range(20))
    assert results == good(range(20), {7})
    [record] = [json.loads(line) for line in errors.read_text().splitlines()]
    assert (record["index"], record["utt_id"], record["exc_type"]) == (7, "utt007", "ItemLost")
    assert reason in record["message"]


def test_raise_names_the_index_and_utt_id_of_an_item_that_kills_its_worker():
    runner = HazardRunner(ToyProvider(CFG, {"crash_on": [5]}))
    with get_client(LOCAL), pytest.raises(ItemError, match=r"index 5 \(utt_id 'utt005'\)"):
        runner(range(12))


def test_a_map_names_the_item_that_kills_its_worker():
    def crash(x):
        if x == 4:
            os._exit(3)
        return x

    with get_client(LOCAL):
        with pytest.raises(ItemError, match=r"^item 4 was lost: KilledWorker"):
            parallel_map(crash, range(10))


@pytest.mark.timeout(120)  # without item_timeout the run would never end
def test_a_worker_killed_from_outside_mid_map_loses_no_result():
    """SIGKILL of a local worker process (as the OOM killer would): its nanny starts another
    and the chunks it held run again; every result arrives exactly once."""
    with get_client(LOCAL) as client:
        victim = next(iter(client.run(os.getpid).values()))
        results = []
        for result in parallel_for(spin_item, range(600), cost=0.01):
            results.append(result)
            if len(results) == 50:
                os.kill(victim, signal.SIGKILL)
        assert victim not in client.run(os.getpid).values()
    assert sorted(results) == list(range(600))


@pytest.mark.timeout(120)  # without item_timeout the run would never end
def test_item_timeout_gives_up_on_an_item_that_never_returns(tmp_path):
    errors = tmp_path / "errors.jsonl"
    runner = HazardRunner(
        ToyProvider(CFG, {"hang_on": [3]}), on_error="skip", errors_path=errors, item_timeout=3
    )
    with get_client(LOCAL):
        results = runner(range(12))
    assert results == good(range(12), {3})
    [record] = [json.loads(line) for line in errors.read_text().splitlines()]
    assert record["index"] == 3 and "item_timeout=3 s" in record["message"]


def test_item_timeout_from_the_config_in_process(tmp_path):
    """Sequential runs interrupt the item (the main thread's alarm)."""
    errors = tmp_path / "errors.jsonl"
    runner = HazardRunner(ToyProvider(CFG, {"hang_on": [1]}), on_error="skip", errors_path=errors)
    with get_client({"env": "none", "item_timeout": 1}):
        assert runner(range(3)) == good(range(3), {1})
    [record] = [json.loads(line) for line in errors.read_text().splitlines()]
    assert record["exc_type"] == "TimeoutError" and "item_timeout=1 s" in record["message"]


def test_a_stalled_item_is_named_in_a_warning(monkeypatch, caplog):
    import espnet3.parallel.dask_map as dask_map

    monkeypatch.setattr(dask_map, "STALL_SECONDS", 2.0)  # a minute in real runs
    runner = HazardRunner(ToyProvider(CFG, {"slow_on": [6]}))  # item 6 takes 6 s, others ~0
    with get_client(LOCAL), caplog.at_level(logging.WARNING, "espnet3.parallel"):
        assert [r["idx"] for r in runner(range(10))] == list(range(10))
    assert "item 6 has run for" in caplog.text and "item_timeout" in caplog.text
