"""get_client on a real 2-process LocalCluster: workers, setup, errors, shutdown, defaults."""

from __future__ import annotations

import os
import time
from pathlib import Path

import psutil
import pytest

from espnet3.parallel import (
    active_client,
    build_client,
    get_client,
    get_parallel_config,
    map_indexed,
    parallel_for,
    parallel_map,
    set_parallel,
    use_parallel,
)
from tests.timing import python_start_seconds

LOCAL = {"env": "local", "n_workers": 2}


def _worker_pids(client) -> set[int]:
    return set(client.run(os.getpid).values())


def _gone(pids: set[int]) -> bool:
    """Whether the processes ``pids`` end, soon relative to how fast this machine is now."""
    deadline = None
    while any(psutil.pid_exists(pid) for pid in pids):
        if deadline is None:  # measured only when they are not gone at once
            deadline = time.monotonic() + 5 * python_start_seconds()
        elif time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


def sleep_then_square(i: int, slow: int) -> int:
    time.sleep(1.0 if i == slow else 0.01)
    return i * i


def mark_then_work(i: int, out: str, bad: int) -> int:
    Path(out, str(i)).touch()
    if i == bad:
        raise ValueError(f"item {i} is bad")
    time.sleep(0.05)
    return os.getpid()


def test_two_worker_processes_setup_once_each_errors_and_clean_shutdown(tmp_path):
    setups, marks = tmp_path / "setups", tmp_path / "marks"
    setups.mkdir()
    marks.mkdir()

    def setup():
        (setups / str(os.getpid())).touch(exist_ok=False)  # a second run in one process fails
        return {"scale": 3, "model": "tiny"}

    def named(x, scale):
        return x * scale

    def var_kw(x, **kwargs):
        return sorted(kwargs), os.getpid()

    with get_client(LOCAL, setup_fn=setup) as client:
        assert active_client() is client
        workers = _worker_pids(client)
        assert len(workers) == 2 and os.getpid() not in workers

        # Ordered map although item 0 finishes last; streaming yields in completion order.
        assert parallel_map(sleep_then_square, range(6), chunk_size=1, slow=0) == [
            i * i for i in range(6)
        ]
        order = [i for i, _ in map_indexed(sleep_then_square, range(6), chunk_size=1, slow=0)]
        assert sorted(order) == list(range(6)) and order[0] != 0

        # The plugin's environment reaches maps that do not name a setup_fn.
        assert parallel_map(named, range(5)) == [0, 3, 6, 9, 12]
        seen = parallel_map(var_kw, range(40), chunk_size=1)
        assert {tuple(names) for names, _ in seen} == {("model", "scale")}
        assert {pid for _, pid in seen} == workers

        with pytest.raises(ValueError, match=r"^item 3 is bad") as err:
            parallel_map(mark_then_work, range(200), out=str(marks), bad=3)
        assert err.value.__notes__ == ["espnet3: raised by item 3 of the map"]
        time.sleep(1.0)
        assert len(list(marks.iterdir())) < 200
    assert active_client() is None
    assert {int(p.name) for p in setups.iterdir()} == workers
    assert _gone(workers)


def test_exception_inside_the_block_still_closes_the_cluster():
    pids: set[int] = set()
    with pytest.raises(KeyError, match="boom"):
        with get_client(LOCAL) as client:
            pids |= _worker_pids(client)
            raise KeyError("boom")
    assert len(pids) == 2 and _gone(pids)
    assert active_client() is None


def test_map_without_a_block_starts_and_closes_a_cluster_for_the_call():
    set_parallel(LOCAL)
    try:
        before = {p.pid for p in psutil.Process().children(recursive=True)}
        pids = set(parallel_map(_pid_of, range(8), chunk_size=1))
        assert os.getpid() not in pids and 1 <= len(pids) <= 2
        assert _gone(pids)
        leftover = {p.pid for p in psutil.Process().children(recursive=True)} - before
        assert not (leftover & pids)
    finally:
        set_parallel(None)


def test_sequential_block_wins_over_a_cluster_default():
    set_parallel(LOCAL)
    try:
        with get_client({"env": "none"}, setup_fn=lambda: {"k": 2}) as client:
            assert client is None
            assert parallel_map(_times_k, [1, 2]) == [(2, os.getpid()), (4, os.getpid())]
        assert get_parallel_config().env == "local"
    finally:
        set_parallel(None)


def _pid_of(_: int) -> int:
    time.sleep(0.02)
    return os.getpid()


def _times_k(x: int, k: int) -> tuple[int, int]:
    return x * k, os.getpid()


def test_a_container_for_local_workers_is_named_as_unused(caplog, tmp_path):
    """Local workers run on this host: a container section there would be silently ignored."""
    image = tmp_path / "x.sif"
    image.write_bytes(b"")
    with caplog.at_level("WARNING", logger="espnet3.parallel.client"):
        with get_client({"env": "none", "container": {"image": str(image)}}):
            pass
    assert f"env 'none' runs this map on this host, outside {image}" in caplog.text


def test_a_client_passed_explicitly_brings_its_blocks_setup(tmp_path):
    """``with get_client(cfg, setup_fn=f) as client: parallel_map(g, items, client=client)``."""

    def setup():
        (tmp_path / f"setup-{os.getpid()}").touch(exist_ok=False)  # a second run would fail
        return {"scale": 10}

    def named(x, scale=-1):
        return x * scale, os.getpid()

    def var_kw(x, **env):
        return sorted(env)

    with get_client(LOCAL, setup_fn=setup) as client:
        results = parallel_map(named, range(20), client=client, chunk_size=1)
        assert [r for r, _ in results] == [10 * i for i in range(20)]
        assert list(parallel_for(var_kw, range(4), client=client)) == [["scale"]] * 4
        workers = _worker_pids(client)
    assert {int(p.name.split("-")[1]) for p in tmp_path.iterdir()} == workers
    assert {pid for _, pid in results} <= workers


def test_build_client_owns_its_cluster():
    client = build_client(LOCAL)
    try:
        assert client.gather(client.map(abs, [-1, -2])) == [1, 2]
        pids = _worker_pids(client)
        assert len(pids) == 2
    finally:
        client.close()
    assert _gone(pids)
    with pytest.raises(ValueError, match="build_client needs a cluster"):
        build_client({"env": "none"})


def test_maps_and_runners_are_placed_by_one_rule():
    """An open block wins over the process-wide config; with none open, a configured cluster
    is started for the call."""
    from espnet3.parallel.placement import placement

    def kind() -> str:
        return type(placement()).__name__

    with use_parallel({"env": "local", "n_workers": 1}):
        assert kind() == "ForTheCall" and not placement().sequential
        with get_client({"env": "none", "item_timeout": 5}):
            assert kind() == "InProcess" and placement().config.item_timeout == 5
        with get_client(LOCAL, start="when_worth_it"):
            assert kind() == "WhenWorthIt"
        with get_client(LOCAL) as client:
            assert kind() == "OnCluster" and placement().client is client
    assert kind() == "InProcess" and placement().sequential


def _pid_after(index: int, seconds: float) -> tuple[int, int]:
    time.sleep(seconds)
    return index, os.getpid()


def test_a_deferred_cluster_starts_only_for_work_worth_it(monkeypatch):
    """start="when_worth_it": a small map runs here and starts nothing; a map measured to
    have more work left than WORTH_A_CLUSTER_SECONDS starts the cluster and ships the rest."""
    from espnet3.parallel import client as client_module

    monkeypatch.setattr(client_module, "WORTH_A_CLUSTER_SECONDS", 0.3)
    with get_client(LOCAL, start="when_worth_it") as client:
        assert client is None and active_client() is None
        small = parallel_map(_pid_after, range(3), seconds=0.01)
        assert small == [(i, os.getpid()) for i in range(3)]
        assert active_client() is None  # 3 x 10 ms is not worth a cluster
        big = parallel_map(_pid_after, range(60), seconds=0.02)
        started = active_client()
        assert started is not None and len(started.scheduler_info()["workers"]) == 2
        assert [i for i, _ in big] == list(range(60))
        here = [i for i, pid in big if pid == os.getpid()]
        assert here == list(range(len(here))) and 2 <= len(here) < 60  # a prefix, then workers
        assert {pid for _, pid in big[len(here) :]} <= _worker_pids(started)
        workers = _worker_pids(started)
    assert _gone(workers)


def test_parallel_start_now_and_a_bad_start_mode():
    from espnet3.errors import ConfigError

    with get_client({**LOCAL, "n_workers": 1, "start": "when_worth_it"}) as client:
        assert client is None
    with get_client({**LOCAL, "n_workers": 1, "start": "when_worth_it"}, start="now") as client:
        assert client is not None
    with pytest.raises(ConfigError, match=r"parallel.start must be one of now, when_worth_it"):
        get_client({**LOCAL, "start": "later"}).__enter__()
