"""CombinedDataset index lookup: binary search over cumulative lengths vs a linear scan.

Many small corpora combined (thousands of per-speaker or per-shard datasets) make a linear
scan over the datasets the cost of every item. This measures random-access lookups per second
through ``CombinedDataset.locate`` against the scan ESPnet3 upstream performs, on the same
offsets.

    python benchmarks/bench_combined_dataset.py [--quick]
"""

from __future__ import annotations

import argparse
import random
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import repeat, table, write_section  # noqa: E402
from espnet3.components.data.dataset import CombinedDataset  # noqa: E402


def linear_locate(cumulative: list[int], idx: int) -> tuple[int, int]:
    """The baseline: walk the cumulative lengths until the index fits."""
    for i, end in enumerate(cumulative):
        if idx < end:
            return i, idx - (cumulative[i - 1] if i else 0)
    raise IndexError(idx)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    counts = [10, 100] if args.quick else [10, 100, 1000, 10000]
    lookups = 2000 if args.quick else 20000
    rows = []
    for n_datasets in counts:
        combined = CombinedDataset([[{"x": 0}] * 10 for _ in range(n_datasets)])
        cumulative = combined.offsets[1:]
        indices = random.Random(0).choices(range(len(combined)), k=lookups)
        assert all(combined.locate(i) == linear_locate(cumulative, i) for i in indices[:100])
        fast = repeat(lambda c=combined, ix=indices: [c.locate(i) for i in ix], repeats=3)["median"]
        slow = repeat(
            lambda c=cumulative, ix=indices: [linear_locate(c, i) for i in ix], repeats=3
        )["median"]
        rows.append(
            [n_datasets, f"{lookups / fast:,.0f}", f"{lookups / slow:,.0f}", f"{slow / fast:.1f}x"]
        )
    write_section(
        "combined_dataset",
        "## CombinedDataset index lookup (10 items per dataset, random indices)\n\n"
        + table(["datasets", "bisect lookups/s", "linear scan lookups/s", "speed-up"], rows)
        + f"\n\n{'Quick run (small sizes).' if args.quick else ''}",
    )
    print(table(["datasets", "bisect/s", "linear/s", "speed-up"], rows))


if __name__ == "__main__":
    main()
