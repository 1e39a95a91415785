"""dask_for on a real 2-worker LocalCluster: numbering, the bound in flight, lost chunks."""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

import pytest

from espnet3.errors import ItemError
from espnet3.parallel import get_client
from espnet3.parallel.dask_map import ISOLATED_ATTEMPTS, dask_for

NO_SETUP = (None, None)


@pytest.fixture(scope="module")
def client():
    with get_client({"env": "local", "n_workers": 2}) as client:
        yield client


def fails_on(x: int, bad: int) -> int:
    if x == bad:
        raise ValueError(f"{x} is bad")
    return -x


def timed(x: int, out: str) -> int:
    """Sleep a little and record when this item ran, in a file named for it."""
    start = time.monotonic()
    time.sleep(0.05)
    Path(out, str(x)).write_text(f"{start} {time.monotonic()}")
    return x


def dies_on(x: int, bad: int, out: str) -> int:
    """Count each run of item ``x`` in ``out``; item ``bad`` kills its worker process."""
    with open(Path(out, str(x)), "a") as runs:
        runs.write(f"{os.getpid()}\n")
    if x == bad:
        os._exit(3)
    return x


def test_items_are_numbered_from_first_index(client):
    pairs = dask_for(abs, [-1, -2, -3], client, NO_SETUP, 1, None, {}, first_index=10)
    assert dict(pairs) == {10: 1, 11: 2, 12: 3}
    with pytest.raises(ItemError, match=r"^item 12 failed: ValueError: 2 is bad") as caught:
        dict(dask_for(fails_on, range(4), client, NO_SETUP, 2, None, {"bad": 2}, first_index=10))
    assert caught.value.index == 12
    assert "espnet3: raised by item 12 of the map" in caught.value.__cause__.__notes__


def test_no_more_chunks_than_max_in_flight_are_out(client, tmp_path):
    drawn = []

    def source():
        for x in range(12):
            drawn.append(x)
            yield x

    pairs = dask_for(timed, source(), client, NO_SETUP, 3, 2, {"out": str(tmp_path)})
    first = next(pairs)
    assert len(drawn) == 6  # two chunks of three out, none sent while results are yielded
    assert sorted([first, *pairs]) == [(x, x) for x in range(12)]

    alone = tmp_path / "alone"
    alone.mkdir()
    dict(dask_for(timed, range(8), client, NO_SETUP, 1, 1, {"out": str(alone)}))
    spans = sorted(tuple(map(float, p.read_text().split())) for p in alone.iterdir())
    assert all(end <= start for (_, end), (start, _) in zip(spans, spans[1:], strict=False))


@pytest.mark.timeout(120)
def test_a_lost_chunk_is_retried_item_by_item_and_the_item_at_fault_is_lost(
    client, tmp_path, caplog
):
    lost = []

    def on_lost(index, item, reason):
        lost.append((index, item, reason))
        return "lost"

    with caplog.at_level(logging.WARNING, "espnet3.parallel"):
        pairs = dask_for(
            dies_on,
            range(12),
            client,
            NO_SETUP,
            4,
            None,
            {"bad": 5, "out": str(tmp_path)},
            on_lost=on_lost,
        )
        results = dict(pairs)
    assert results == {**{x: x for x in range(12)}, 5: "lost"}
    [(index, item, reason)] = lost
    assert (index, item) == (5, 5) and "KilledWorker" in reason
    assert "items 4..7 failed" in caplog.text and "retrying them one by one" in caplog.text
    runs = {int(p.name): len(p.read_text().split()) for p in tmp_path.iterdir()}
    assert runs[5] == 1 + ISOLATED_ATTEMPTS  # in its chunk, then alone each time
    assert runs[4] == 2  # in its chunk, then alone
    # Others run at most twice: a chunk queued behind the dying one can be lost with it.
    assert max(n for x, n in runs.items() if x != 5) <= 2
