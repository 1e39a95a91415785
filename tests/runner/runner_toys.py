"""Small real providers and runners shared by the runner tests.

They live in their own module so that Dask workers and shard jobs (other processes) can
import them by class path; the tests put this directory on ``PYTHONPATH``.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter

from espnet3.parallel.base_runner import concatenate_shard_files
from espnet3.runner.base_runner import BaseRunner
from espnet3.runner.inference_provider import InferenceProvider

#: How many times each process built an environment (read back through ``PidRunner``).
BUILDS: Counter = Counter()


class Affine:
    """A tiny model: ``x -> scale * x + bias``."""

    def __init__(self, scale: int, bias: int):
        self.scale, self.bias = scale, bias

    def __call__(self, x: int) -> int:
        return self.scale * x + self.bias


class ToyProvider(InferenceProvider):
    """``cfg.n`` items ``{"utt_id": "uttNNN", "value": i}`` and an :class:`Affine` model."""

    @staticmethod
    def build_dataset(cfg):
        BUILDS[os.getpid()] += 1
        return [{"utt_id": f"utt{i:03d}", "value": i} for i in range(cfg.n)]

    @staticmethod
    def build_model(cfg):
        return Affine(cfg.scale, cfg.get("bias", 0))


class BrokenProvider(ToyProvider):
    """Its model cannot be built: every process that tries fails."""

    @staticmethod
    def build_model(cfg):
        raise RuntimeError(f"no checkpoint at {cfg.checkpoint}")


class ToyRunner(BaseRunner):
    """``{"idx", "utt_id", "y"}``; items whose value is in ``drop`` give ``None``; items in
    ``fail_on`` raise; each item sleeps ``sleep`` seconds."""

    @staticmethod
    def forward(idx, *, dataset, model, drop=(), fail_on=(), sleep=0.0, **params):
        item = dataset[idx]
        if sleep:
            time.sleep(sleep)
        if item["value"] in fail_on:
            raise ValueError(f"cannot decode value {item['value']}")
        if item["value"] in drop:
            return None
        return {"idx": idx, "utt_id": item["utt_id"], "y": model(item["value"])}


class BatchToyRunner(BaseRunner):
    """The batched form of :class:`ToyRunner`: one result per index of the batch."""

    @staticmethod
    def forward(idx, *, dataset, model, drop=(), **params):
        return [
            None
            if dataset[i]["value"] in drop
            else {"idx": i, "utt_id": dataset[i]["utt_id"], "y": model(dataset[i]["value"])}
            for i in idx
        ]


class PidRunner(BaseRunner):
    """Which process ran the item (after sleeping ``sleep`` s), and how often that process
    built the environment."""

    @staticmethod
    def forward(idx, *, dataset, model, sleep=0.0, **params):
        time.sleep(sleep)
        return {"idx": idx, "pid": os.getpid(), "builds": BUILDS[os.getpid()]}


class EnvRunner(BaseRunner):
    """The value of the environment variable ``variable`` in the process that ran the item."""

    @staticmethod
    def forward(idx, *, dataset, model, variable="", **params):
        return {"idx": idx, "value": os.environ.get(variable)}


class SetRunner(BaseRunner):
    """Returns a ``set``, which JSON cannot encode."""

    @staticmethod
    def forward(idx, *, dataset, model, **params):
        return {"idx": idx, "tags": {"a", "b"}}


class HazardRunner(BaseRunner):
    """Like :class:`ToyRunner`, but some items kill their worker process, return something that
    cannot be pickled, never return, or take ``slow_for`` seconds. Only for cluster runs:
    ``os._exit`` in the parent would end the test session."""

    @staticmethod
    def forward(
        idx,
        *,
        dataset,
        model,
        crash_on=(),
        unpicklable=(),
        hang_on=(),
        slow_on=(),
        slow_for=6.0,
        **params,
    ):
        if idx in crash_on:
            os._exit(3)
        if idx in hang_on:
            time.sleep(3600)
        if idx in slow_on:
            time.sleep(slow_for)
        if idx in unpicklable:
            import threading

            return {"idx": idx, "lock": threading.Lock()}
        item = dataset[idx]
        return {"idx": idx, "utt_id": item["utt_id"], "y": model(item["value"])}


class LinesRunner(BaseRunner):
    """Upstream's shard-runner shape: each shard writes its results as JSON lines to
    ``lines.txt``; ``merge`` concatenates them (``concatenate_shard_files``) into
    ``<output_dir>/lines.txt`` and returns them. Each ``forward`` appends its index to
    ``ran`` (a file shared by every process), so tests can count what ran; items in
    ``crash_on`` kill their process, those in ``hang_on`` never return, those in ``fail_on``
    raise, ``sleep`` slows each item."""

    @staticmethod
    def forward(
        idx, *, dataset, model, ran=None, sleep=0.0, crash_on=(), fail_on=(), hang_on=(), **env
    ):
        if ran:
            with open(ran, "a") as f:
                f.write(f"{idx} {os.getpid()}\n")
        if sleep:
            time.sleep(sleep)
        if idx in crash_on:
            os._exit(3)
        if idx in hang_on:
            time.sleep(3600)
        if idx in fail_on:
            raise ValueError(f"cannot decode value {idx}")
        item = dataset[idx]
        return {"idx": idx, "utt_id": item["utt_id"], "y": model(item["value"]), "pid": os.getpid()}

    @staticmethod
    def open_writers(shard_dir, **env):
        return {"lines": open(shard_dir / "lines.txt", "w", encoding="utf-8")}

    @staticmethod
    def write_record(writers, result, state, **env):
        writers["lines"].write(json.dumps(result) + "\n")
        state["written"] = state.get("written", 0) + 1

    @staticmethod
    def close_writers(writers, state, **env):
        writers["lines"].close()
        return {"closed": True}

    def merge(self, shard_dirs):
        out = self.output_dir / "lines.txt"
        if not concatenate_shard_files(shard_dirs, "lines.txt", out):
            return []
        return [json.loads(line) for line in out.read_text().splitlines()]


def ran_items(path) -> list[tuple[int, int]]:
    """``(index, pid)`` of every item ``LinesRunner`` started, in order (every process)."""
    try:
        lines = open(path).read().splitlines()
    except FileNotFoundError:
        return []
    return [tuple(int(x) for x in line.split()) for line in lines if len(line.split()) == 2]


def kill_a_worker_when_it_runs(ran_log, call):
    """Run ``call()`` while a thread SIGKILLs the process that started the third item
    ``LinesRunner`` logged to ``ran_log``; ``(call's result, the killed pid)``."""
    box = {}

    def kill_once_running():
        for _ in range(600):
            items = ran_items(ran_log)
            if len(items) >= 3:
                box["pid"] = items[-1][1]
                os.kill(box["pid"], signal.SIGKILL)
                return
            time.sleep(0.05)

    killer = threading.Thread(target=kill_once_running)
    killer.start()
    try:
        result = call()
    finally:
        killer.join()
    return result, box["pid"]


_HOLD = """
import sys, time
from espnet3.runner.shard_dir import ShardClaim
claim = ShardClaim.take(sys.argv[1])
print("held", flush=True)
time.sleep(600)
"""


@contextlib.contextmanager
def holding_a_claim(shard_dir):
    """Another live process holds ``shard_dir``'s claim for the block; it is then killed as
    ``kill -9`` would (its lock file stays). Yields the process."""
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLD, str(shard_dir)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        yield holder
    finally:
        holder.kill()
        holder.wait()
