"""The runner backend registry: one choice for calls and streams, and a backend added from here."""

from __future__ import annotations

import os

import pytest
from runner_toys import PidRunner, ToyProvider, ToyRunner

from espnet3.errors import ConfigError
from espnet3.parallel import get_client, set_parallel
from espnet3.runner.backends import BACKENDS, Backend, choose_backend, register_backend

CFG = {"n": 12, "scale": 3, "bias": 1}


def test_the_choice_follows_the_open_block_then_async_mode(tmp_path):
    runner = ToyRunner(ToyProvider(CFG))
    assert choose_backend(runner)[0].name == "sequential"
    with get_client({"env": "local", "n_workers": 1}):
        assert choose_backend(runner)[0].name == "dask"
    detached = ToyRunner(ToyProvider(CFG), async_mode=True, async_specs_dir=tmp_path)
    assert choose_backend(detached)[0].name == "async"
    assert choose_backend(detached, streaming=True)[0].name == "sequential"


def test_an_explicit_backend_wins_over_the_open_block():
    with get_client({"env": "local", "n_workers": 1}):
        pids = PidRunner(ToyProvider(CFG), backend="sequential")(range(4))
    assert {r["pid"] for r in pids} == {os.getpid()}


def test_unknown_and_non_streaming_backends_are_refused_by_name():
    with pytest.raises(ConfigError, match=r"unknown runner backend 'dsak' \(did you mean 'dask'"):
        ToyRunner(ToyProvider(CFG), backend="dsak")(range(2))
    with pytest.raises(ConfigError, match=r"backend 'async' does not stream results"):
        list(ToyRunner(ToyProvider(CFG), backend="async").iter(range(2)))


class Reversed(Backend):
    """Runs in this process, last index first: a backend written only in this test."""

    name = "reversed"
    seen: list[list] = []

    @staticmethod
    def outcomes(forward, provider, units, item_timeout, where):
        units = list(units)
        Reversed.seen.append(units[::-1])
        done = list(BACKENDS["sequential"].outcomes(forward, provider, units[::-1], None, where))
        yield from done[::-1]


def test_a_registered_backend_runs_calls_and_streams():
    backend = register_backend(Reversed())
    try:
        runner = ToyRunner(ToyProvider(CFG), backend="reversed")
        assert [r["idx"] for r in runner(range(5))] == [0, 1, 2, 3, 4]
        assert [i for i, _ in runner.iter([3, 1])] == [3, 1]
        assert Reversed.seen == [[4, 3, 2, 1, 0], [1, 3]]  # it ran, last index first
        with pytest.raises(ConfigError, match="already exists"):
            register_backend(Reversed())
    finally:
        del BACKENDS[backend.name]
        set_parallel(None)


def test_a_runner_in_a_deferred_block_starts_the_cluster_once_worth_it(monkeypatch):
    from espnet3.parallel import active_client
    from espnet3.parallel import client as client_module

    monkeypatch.setattr(client_module, "WORTH_A_CLUSTER_SECONDS", 0.2)
    runner = PidRunner(ToyProvider({**CFG, "n": 40}, {"sleep": 0.02}))
    with get_client({"env": "local", "n_workers": 2}, start="when_worth_it"):
        assert choose_backend(runner)[0].name == "dask"
        results = runner(range(40))
        assert active_client() is not None
    assert [r["idx"] for r in results] == list(range(40))
    pids = [r["pid"] for r in results]
    assert pids[0] == os.getpid() and pids[-1] != os.getpid()
