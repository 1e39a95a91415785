"""Scaling study: runner throughput vs workers and item cost, on `local` and on SLURM.

For item costs of 50 µs, 1 ms and 10 ms (fixed CPU cost), the same ``SpinRunner`` runs on the
sequential backend, on a LocalCluster with 1 and 2 workers, and on SLURM with 1 and 2 worker
jobs (when ``sinfo`` answers). Speedup = sequential time / backend time, efficiency = speedup /
workers; cluster start is excluded. Writes a table and ``scaling.png`` (speedup vs item cost
beside the ideal line) into RESULTS.md.

    python benchmarks/bench_scaling.py [--quick]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
# Workers unpickle benchmarks.workloads by name, so they need the repo root on their path.
os.environ["PYTHONPATH"] = os.pathsep.join(
    filter(None, [str(HERE.parent), os.environ.get("PYTHONPATH")])
)

from benchmarks.common import repeat, table, write_section  # noqa: E402
from benchmarks.workloads import SpinProvider, SpinRunner  # noqa: E402
from espnet3.parallel import get_client  # noqa: E402

COSTS = {"50 µs": 50e-6, "1 ms": 1e-3, "10 ms": 10e-3}
#: Seconds of sequential work per measurement, per item cost.
WORK_SECONDS = 4.0


def backends() -> dict[str, tuple[dict, int]]:
    found = {
        "local x1": ({"env": "local", "n_workers": 1}, 1),
        "local x2": ({"env": "local", "n_workers": 2}, 2),
    }
    if shutil.which("sinfo") and subprocess.run(["sinfo"], capture_output=True).returncode == 0:
        options = {"cores": 1, "memory": "1GB", "interface": "lo", "walltime": "00:30:00"}
        found["slurm x1"] = (
            {"env": "slurm", "n_workers": 1, "min_workers": 1, "options": options},
            1,
        )
        found["slurm x2"] = (
            {"env": "slurm", "n_workers": 2, "min_workers": 2, "options": options},
            2,
        )
    return found


def measure(config: dict | None, repeats: int, work: float) -> dict[str, dict]:
    """Median wall time per item cost on one backend (one cluster start for all costs)."""
    out = {}
    with get_client(config) as _client:
        for label, cost in COSTS.items():
            n = max(int(work / cost), 20)
            runner = SpinRunner(SpinProvider({"cost": cost}))
            runner(range(min(n, 200)))  # warm the environment on every worker
            stats = repeat(lambda runner=runner, n=n: runner(range(n)), repeats=repeats, warmup=0)
            out[label] = {**stats, "items": n}
    return out


def plot(speedups: dict[str, dict[str, float]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    xs = [c * 1e3 for c in COSTS.values()]
    for name, per_cost in speedups.items():
        ax.plot(xs, [per_cost[label] for label in COSTS], marker="o", label=name)
    for workers in (1, 2):
        ax.axhline(workers, color="grey", linestyle="--", linewidth=0.8)
    ax.set_xscale("log")
    ax.set_xlabel("item cost (ms of CPU)")
    ax.set_ylabel("speedup over sequential runner")
    ax.set_title("Runner scaling (dashed: ideal for 1 and 2 workers)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    repeats, work = (1, 0.5) if args.quick else (3, WORK_SECONDS)
    base = measure(None, repeats, work)
    rows, speedups = [], {}
    for name, (config, workers) in backends().items():
        print(f"[scaling] {name}", flush=True)
        timings = measure(config, repeats, work)
        speedups[name] = {}
        for label in COSTS:
            speedup = base[label]["median"] / timings[label]["median"]
            speedups[name][label] = speedup
            t = timings[label]
            rows.append(
                [
                    name,
                    label,
                    t["items"],
                    f"{t['median']:.2f} s ({t['min']:.2f}-{t['max']:.2f})",
                    f"{speedup:.2f}x",
                    f"{100 * speedup / workers:.0f} %",
                ]
            )
    png = HERE / "scaling.png"
    plot(speedups, png)
    seq = ", ".join(f"{label}: {base[label]['median']:.2f} s" for label in COSTS)
    write_section(
        "scaling",
        "## Scaling study (runner, fixed-CPU-cost items)\n\n"
        f"Sequential runner baseline (median of {repeats}): {seq}. Cluster start excluded.\n\n"
        + table(
            ["backend", "item cost", "items", "wall (median, min-max)", "speedup", "efficiency"],
            rows,
        )
        + "\n\n![speedup vs item cost](scaling.png)",
    )


if __name__ == "__main__":
    main()
