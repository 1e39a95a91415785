"""Progress in batch logs: lines now and then when stderr is not a terminal, and what an
interrupt stopped. (Under pytest stderr is captured, so never a terminal: the log path.)"""

from __future__ import annotations

import logging
import re
import time

import pytest

from espnet3.errors import ConfigError
from espnet3.parallel import parallel_map
from espnet3.runner.base_runner import BaseRunner
from espnet3.runner.provider import EnvironmentProvider
from espnet3.utils.progress import progress, unfinished


def slow_square(x: int) -> int:
    time.sleep(0.02)
    return x * x


def progress_lines(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "espnet3.progress"]


def test_a_map_logs_its_progress_now_and_then_and_when_it_ends(monkeypatch, caplog):
    monkeypatch.setenv("ESPNET3_PROGRESS_SECONDS", "0.05")
    with caplog.at_level(logging.INFO, logger="espnet3.progress"):
        assert parallel_map(slow_square, range(20)) == [x * x for x in range(20)]
    lines = progress_lines(caplog)
    # 20 items of at least 20 ms each: the 50 ms interval passes at least once before the end.
    assert len(lines) >= 2
    assert all(line.startswith("slow_square: ") for line in lines)
    for line in lines[:-1]:
        assert re.fullmatch(
            r"slow_square: \d+/20 items \(\d+%\), [\d.e+]+ items/s, about .+ left", line
        ), line
    assert re.fullmatch(r"slow_square: 20/20 items \(100%\), [\d.e+]+ items/s, in \d+ s", lines[-1])


def test_by_default_a_short_map_says_nothing(monkeypatch, caplog):
    monkeypatch.delenv("ESPNET3_PROGRESS_SECONDS", raising=False)
    with caplog.at_level(logging.INFO, logger="espnet3.progress"):
        parallel_map(abs, [-1, -2, -3])
    assert progress_lines(caplog) == []


class StopAt(BaseRunner):
    @staticmethod
    def forward(idx, **env):
        if idx == 5:
            raise KeyboardInterrupt
        return idx


class NoEnv(EnvironmentProvider):
    def build_env(self):
        return {}


def test_an_interrupt_leaves_a_count_of_what_had_finished(caplog):
    unfinished()  # nothing left over from other tests
    with caplog.at_level(logging.INFO, logger="espnet3.progress"):
        with pytest.raises(KeyboardInterrupt):
            StopAt(NoEnv(), backend="sequential")(range(10))
    assert unfinished() == ["StopAt: 5 of 10 items done"]
    assert unfinished() == []  # said once
    assert progress_lines(caplog) == []  # no "finished" line for stopped work


@pytest.mark.parametrize("value", ["soon", "0", "-3"])
def test_a_bad_interval_names_the_variable(monkeypatch, value):
    monkeypatch.setenv("ESPNET3_PROGRESS_SECONDS", value)
    with pytest.raises(ConfigError, match=f"ESPNET3_PROGRESS_SECONDS .*{value!r}"):
        progress(1, "x")


class Square(BaseRunner):
    @staticmethod
    def forward(idx, **env):
        return idx * idx


def test_a_sharded_run_says_what_it_runs_and_when_it_is_done(tmp_path, caplog):
    with caplog.at_level(logging.INFO, logger="espnet3.runner.sharded"):
        Square(NoEnv(), output_dir=tmp_path / "out")(range(6))
        Square(NoEnv(), output_dir=tmp_path / "out")(range(6))  # resumed: nothing to run
    lines = [r.getMessage() for r in caplog.records if r.name == "espnet3.runner.sharded"]
    first, done, again = lines
    shards = re.fullmatch(rf"Square: (\d+) of \1 shard\(s\) to run in {tmp_path / 'out'}", first)
    assert shards, first
    assert re.fullmatch(rf"Square: {shards[1]} shard\(s\) done in [\d.]+ s", done)
    assert again == f"Square: 0 of {shards[1]} shard(s) to run in {tmp_path / 'out'}"
