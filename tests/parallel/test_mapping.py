"""parallel_map / parallel_for on this run's backend (ESPNET3_TEST_PARALLEL: none or local).

The module opens one ``get_client`` block for the backend and keeps it open, so every test
here maps through it without a client argument, as runners do.
"""

from __future__ import annotations

import itertools
import os
import time
import traceback
from pathlib import Path

import pytest

from espnet3.errors import ConfigError, ItemError, SetupError
from espnet3.parallel import get_client, map_indexed, parallel_for, parallel_map
from espnet3.parallel.dask_map import MAX_CHUNK_SIZE, ChunkSizer


@pytest.fixture(scope="module")
def shared(parallel_env):
    """One open block for the module: sequential, or a 2-worker LocalCluster."""
    config = {"env": "none"} if parallel_env == "none" else {"env": "local", "n_workers": 2}
    with get_client(config) as client:
        yield client


@pytest.fixture
def backend(shared, parallel_config):
    return parallel_config


def slow_first(i: int, n: int) -> int:
    time.sleep((n - i) * 0.005)  # later items finish first on a cluster
    return i * i


def mark_then_work(i: int, out: str, bad: int) -> int:
    Path(out, str(i)).touch()
    if i == bad:
        raise ValueError(f"item {i} is bad")
    time.sleep(0.05)
    return i


def scaled(x, scale, offset=0):
    return x * scale + offset


def env_names(x, **kwargs):
    return sorted(kwargs)


def test_map_returns_results_in_input_order(backend):
    assert parallel_map(slow_first, range(12), n=12, chunk_size=1) == [i * i for i in range(12)]
    assert parallel_map(slow_first, range(30), n=30) == [i * i for i in range(30)]


def test_for_yields_every_result_once_from_a_generator(backend):
    assert sorted(parallel_for(scaled, (i for i in range(50)), scale=2)) == [
        2 * i for i in range(50)
    ]
    tagged = list(map_indexed(scaled, (i for i in range(50)), scale=2))
    assert sorted(tagged) == [(i, 2 * i) for i in range(50)]


def test_for_reads_items_lazily_and_stops_when_abandoned(backend):
    pulled = itertools.count()

    def items():
        for i in range(10**6):
            next(pulled)
            yield i

    stream = parallel_for(abs, items())
    first = [next(stream) for _ in range(3)]
    stream.close()
    assert len(first) == 3
    assert next(pulled) < 10 * MAX_CHUNK_SIZE  # far fewer than the million items


def test_empty_input(backend):
    assert parallel_map(abs, []) == []


def test_error_keeps_its_type_and_notes_the_item_index(backend, tmp_path):
    with pytest.raises(ValueError, match=r"^item 7 is bad") as err:
        parallel_map(mark_then_work, range(10), chunk_size=1, out=str(tmp_path), bad=7)
    assert err.value.__notes__ == ["espnet3: raised by item 7 of the map"]
    assert "mark_then_work" in "".join(traceback.format_exception(err.value))
    with pytest.raises(ValueError, match="item 2 is bad"):
        list(parallel_for(mark_then_work, range(5), chunk_size=1, out=str(tmp_path), bad=2))
    with pytest.raises(
        ItemError, match=r"^items? 4(\.\.4)? failed.*ValueError: item 4 is bad"
    ) as wrapped:
        list(map_indexed(mark_then_work, range(5), chunk_size=1, out=str(tmp_path), bad=4))
    assert isinstance(wrapped.value.__cause__, ValueError)


def test_error_cancels_the_remaining_items(backend, tmp_path):
    with pytest.raises(ValueError, match="item 3 is bad"):
        parallel_map(mark_then_work, range(60), out=str(tmp_path), bad=3)
    time.sleep(1.0)  # whatever was already running has finished by now
    started = {int(path.name) for path in tmp_path.iterdir()}
    assert 3 in started  # the failing item ran; workers may have taken items 0-2 later
    assert len(started) < 60


def placed(x, where):
    return f"{where}/{x}"


def test_a_keyword_named_where_reaches_the_function(backend):
    """``where`` also names where a map runs, inside espnet3: it must not be taken for it."""
    assert parallel_map(placed, [1, 2], where="out") == ["out/1", "out/2"]


def test_unpicklable_argument_is_a_clear_error(backend, parallel_env):
    import threading

    if parallel_env == "none":
        pytest.skip("nothing is pickled in process")
    with pytest.raises(ConfigError, match=r"items 0\.\.0 cannot be sent.*lock.*setup_fn"):
        parallel_map(scaled, [1, 2], scale=threading.Lock())


def test_setup_env_is_injected_by_name_and_through_kwargs(backend):
    def setup():
        return {"scale": 3, "model": "tiny"}

    assert parallel_map(scaled, [1, 2], setup_fn=setup, offset=1) == [4, 7]
    assert parallel_map(env_names, [0], setup_fn=setup) == [["model", "scale"]]


def test_setup_name_clashing_with_call_kwargs_is_an_error(backend):
    with pytest.raises(ConfigError, match=r"\['scale'\] are given both by the setup environment"):
        parallel_map(scaled, [1], setup_fn=lambda: {"scale": 3}, scale=4)


def test_failing_setup_is_reported_by_name(backend):
    def broken_setup():
        raise RuntimeError("checkpoint missing")

    with pytest.raises(ItemError, match=r"setup .*broken_setup failed: RuntimeError: checkpoint"):
        parallel_map(abs, [1, 2], setup_fn=broken_setup)


def test_get_clients_setup_runs_once_per_worker_and_reaches_every_map(parallel_config, tmp_path):
    def setup():
        (tmp_path / f"setup-{os.getpid()}").touch(exist_ok=False)  # a second run would fail
        return {"scale": 10, "pid": os.getpid()}

    def task(x, scale, pid):
        return x * scale, pid, os.getpid()

    with get_client(setup_fn=setup) as client:
        results = parallel_map(task, range(20), chunk_size=1)
        kwargs_seen = parallel_map(env_names, range(4))
        workers = 1 if client is None else len(client.scheduler_info()["workers"])
    assert [r[0] for r in results] == [10 * x for x in range(20)]
    assert all(built_in == ran_in for _, built_in, ran_in in results)
    setup_pids = {int(p.name.split("-")[1]) for p in tmp_path.iterdir()}
    assert len(setup_pids) == workers == len(list(tmp_path.iterdir()))
    assert {ran_in for *_, ran_in in results} <= setup_pids
    assert kwargs_seen == [["pid", "scale"]] * 4


def test_fixed_chunk_size_and_bad_sizes(backend):
    assert parallel_map(scaled, range(23), chunk_size=7, scale=1) == list(range(23))
    for bad in (0, -1, 2.5, True):
        with pytest.raises(ConfigError, match=f"chunk_size must be a positive integer.*{bad!r}"):
            parallel_map(abs, [1], chunk_size=bad)
    with pytest.raises(ConfigError, match="max_in_flight must be a positive integer"):
        parallel_map(abs, [1], max_in_flight=0)


def test_chunk_sizer_grows_to_the_target_and_spreads_the_tail():
    sizer = ChunkSizer(None, slots=2, total=4000)
    assert [sizer.next_size() for _ in range(4)] == [1, 1, 1, 1]
    sizer.observe(1, 0.001)  # 1 ms items: 500 fill the 0.5 s target
    assert sizer.next_size() == 500
    sizer.observe(500, 0.5)
    sizes = []
    while sizer.remaining:
        sizes.append(sizer.next_size())
    assert sizes[0] == 500 and sizes[-1] < 500 and sum(sizes) == 4000 - 504
    # The tail shrinks, but never below chunks of 50 ms (10 ms items: 5 per chunk)
    tail = ChunkSizer(None, slots=2, total=8)
    tail.observe(1, 0.01)
    assert tail.next_size() == 5
    cheap = ChunkSizer(None, slots=2, total=None)
    cheap.observe(1, 1e-9)
    assert cheap.next_size() == MAX_CHUNK_SIZE
    assert ChunkSizer(5, slots=2, total=3).next_size() == 5


def test_a_function_workers_cannot_import_fails_at_once(backend, tmp_path, monkeypatch):
    """Unchecked, the workers' message handler dies on the task and the map waits forever."""
    if backend["env"] == "none":
        pytest.skip("in process, every module the caller imports is there")
    (tmp_path / "only_in_the_parent.py").write_text("def inc(x):\n    return x + 1\n")
    monkeypatch.syspath_prepend(str(tmp_path))  # after the workers started: they lack it
    import only_in_the_parent

    with pytest.raises(ConfigError, match=r"No module named 'only_in_the_parent'.*PYTHONPATH"):
        parallel_map(only_in_the_parent.inc, range(4))
    assert parallel_map(abs, [-1, -2]) == [1, 2]  # the cluster is still usable


def test_functions_of_a_recipe_directory_package_run_on_workers(backend, tmp_path):
    """Packages imported from a directory (recipes) reach workers started before the import."""
    from espnet3.utils.imports import import_package_from_dir

    package = tmp_path / "my_recipe" / "dataset"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("from .steps import triple\n")
    (package / "steps.py").write_text("def triple(x):\n    return 3 * x\n")
    recipe = import_package_from_dir(package)
    assert parallel_map(recipe.triple, range(5)) == [0, 3, 6, 9, 12]


def test_a_closed_client_given_to_a_map_is_refused_at_once():
    with get_client({"env": "local", "n_workers": 1}) as client:
        pass
    with pytest.raises(SetupError, match="not running \\(status 'closed'\\)"):
        parallel_map(str, [1, 2], client=client)
