"""BaseRunner in sync mode: order, filtering, batching, error policy, on either backend.

The backend-agnostic tests run on the backend of ``parallel_config`` (sequential by default,
a 2-worker LocalCluster with ESPNET3_TEST_PARALLEL=local); the comparison test runs both.
"""

from __future__ import annotations

import json

import pytest
from runner_toys import BatchToyRunner, BrokenProvider, PidRunner, ToyProvider, ToyRunner

from espnet3.errors import ConfigError, ItemError
from espnet3.parallel import get_client, set_parallel
from espnet3.runner.base_runner import BaseRunner

CFG = {"n": 30, "scale": 3, "bias": 1}


def expected(indices, drop=()):
    return [{"idx": i, "utt_id": f"utt{i:03d}", "y": 3 * i + 1} for i in indices if i not in drop]


def test_results_in_index_order_with_none_filtered(parallel_config):
    indices = [7, 3, 20, 0, 11, 5]
    runner = ToyRunner(ToyProvider(CFG, {"drop": [3, 11]}))
    assert runner(indices) == expected(indices, drop=(3, 11))


def test_iter_streams_index_result_pairs_from_a_generator(parallel_config):
    runner = ToyRunner(ToyProvider(CFG))
    pairs = list(runner.iter(i for i in range(0, 30, 3)))
    assert [i for i, _ in pairs] == list(range(0, 30, 3))
    assert [r for _, r in pairs] == expected(range(0, 30, 3))


def test_batch_size_passes_index_lists_and_returns_one_result_per_batch(parallel_config):
    runner = BatchToyRunner(ToyProvider(CFG, {"drop": [4]}), batch_size=4)
    batches = runner(range(10))
    assert [len(b) for b in batches] == [4, 4, 2] and batches[1][0] is None
    assert flat(batches) == expected(range(10), drop=(4,))
    assert [unit for unit, _ in runner.iter(range(5))] == [[0, 1, 2, 3], [4]]


def flat(batches):
    return [r for batch in batches for r in batch if r is not None]


def test_raise_names_index_and_utt_id(parallel_config):
    runner = ToyRunner(ToyProvider(CFG, {"fail_on": [13]}))
    with pytest.raises(
        ItemError, match=r"index 13 \(utt_id 'utt013'\): ValueError: cannot decode value 13"
    ) as err:
        runner(range(20))
    assert err.value.index == 13
    assert "in forward" in err.value.worker_traceback


def test_skip_records_failures_and_completes(parallel_config, tmp_path):
    errors = tmp_path / "errors.jsonl"
    runner = ToyRunner(ToyProvider(CFG, {"fail_on": [2, 17]}), on_error="skip", errors_path=errors)
    assert runner(range(20)) == expected(range(20), drop=(2, 17))
    records = [json.loads(line) for line in errors.read_text().splitlines()]
    assert [r["index"] for r in records] == [2, 17]
    assert records[0]["utt_id"] == "utt002" and records[0]["exc_type"] == "ValueError"
    assert records[1]["message"] == "cannot decode value 17"
    assert "Traceback" in records[1]["traceback"]


def test_provider_build_failure_reports_the_builders_traceback():
    with pytest.raises(ItemError, match="no checkpoint at /models/missing.pt") as err:
        BrokenProvider({**CFG, "checkpoint": "/models/missing.pt"})  # built when made
    assert "build_model" in err.value.worker_traceback


def test_sequential_and_two_local_workers_give_identical_results():
    indices = list(range(30))[::-1]
    provider = ToyProvider(CFG, {"drop": [5, 6]})
    set_parallel(None)
    sequential = ToyRunner(provider)(indices)
    batched = BatchToyRunner(provider, batch_size=4)(indices)
    with get_client({"env": "local", "n_workers": 2}):
        pids = PidRunner(ToyProvider(CFG))(range(30))  # first: fresh worker processes
        on_local = ToyRunner(provider)(indices)
        batched_local = BatchToyRunner(provider, batch_size=4)(indices)
    assert batched == batched_local
    assert sequential == on_local == flat(batched) == expected(indices, drop=(5, 6))
    assert {r["builds"] for r in pids} == {1}  # one environment per worker process


def test_duck_typed_provider_without_the_base_class(parallel_config):
    """Any object with build_env_local() (and build_worker_setup_fn() for a cluster) works."""

    class Plain:
        def build_env_local(self):
            return ToyProvider(CFG).build_env_local()

        def build_worker_setup_fn(self):
            return ToyProvider(CFG).build_worker_setup_fn()

    assert ToyRunner(Plain())([2, 1]) == expected([2, 1])


def test_bad_arguments_are_explained():
    provider = ToyProvider(CFG)
    with pytest.raises(ConfigError, match="on_error must be one of raise, skip, got 'skp'"):
        ToyRunner(provider, on_error="skp")
    zero = ToyRunner(provider, batch_size=0)  # checked per call, as upstream ESPnet3 does
    with pytest.raises(ValueError, match="batch_size must be a positive integer"):
        zero([0])
    with pytest.raises(ConfigError, match=r"needs a provider with build_env_local\(\) .*got dict"):
        ToyRunner({"n": 1})
    with pytest.raises(
        ConfigError, match=r"indices must be integers, got 'a' \(str\) at position 1"
    ):
        ToyRunner(provider)([0, "a"])
    with pytest.raises(ConfigError, match="BaseRunner does not define forward: subclass"):
        BaseRunner(provider)

    class Forgetful(BaseRunner):
        def forward(self, idx, **env):
            return idx

    with pytest.raises(ConfigError, match=r"Forgetful.forward must be a @staticmethod"):
        Forgetful(provider)


@pytest.mark.parametrize("bad", [-1, 0, "x", True])
def test_item_timeout_given_per_call_is_checked_like_the_configs(bad):
    from espnet3.errors import ConfigError
    from espnet3.parallel import ParallelConfig, map_indexed

    message = "item_timeout must be a positive number of seconds or null, got "
    with pytest.raises(ConfigError, match=f"^parallel.{message}"):
        ParallelConfig.from_any({"env": "none", "item_timeout": bad})
    with pytest.raises(ConfigError, match=f"^{message}{bad!r}$"):
        ToyRunner(ToyProvider(CFG), item_timeout=bad)
    with pytest.raises(ConfigError, match=f"^{message}{bad!r}$"):
        list(map_indexed(str, [1, 2], item_timeout=bad))
