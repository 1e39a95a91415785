"""Run every benchmark, one after another, and rewrite benchmarks/RESULTS.md.

Each ``bench_*.py`` script measures its contenders side by side in one run and writes its own
section of RESULTS.md; this script runs them in a fixed order (cheapest first), records the
machine, and reports which scripts failed without stopping the others.

    python benchmarks/run_all.py            # full sizes (tens of minutes on 2 cores)
    python benchmarks/run_all.py --quick    # small sizes, a smoke run
    python benchmarks/run_all.py --only parallel runner
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from benchmarks.common import machine, write_section  # noqa: E402

#: Benchmarks in the order they run; SLURM ones need `bash slurm/local-cluster.sh up`.
ORDER = [
    "tls",
    "parallel",
    "runner",
    "async_shards",
    "scaling",
    "growth",
    "hf_cutset",
    "combined_dataset",
    "mini_an4",
    "scale",
    "slurm_startup",
]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes: a smoke run")
    parser.add_argument("--only", nargs="*", default=None, choices=ORDER, help="run only these")
    args = parser.parse_args(argv)
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    write_section(
        "machine",
        f"Measured {started} on {machine()}. "
        f"Run `python benchmarks/run_all.py` (or `nox -s bench`) to reproduce.",
    )
    failed = []
    for name in args.only or ORDER:
        script = HERE / f"bench_{name}.py"
        if not script.exists():
            print(f"[run_all] {script.name}: not present, skipped", flush=True)
            continue
        print(f"[run_all] {script.name} ...", flush=True)
        t0 = time.perf_counter()
        cmd = [sys.executable, str(script), *(["--quick"] if args.quick else [])]
        code = subprocess.call(cmd, cwd=HERE.parent)
        print(
            f"[run_all] {script.name}: exit {code} in {time.perf_counter() - t0:.0f}s", flush=True
        )
        if code != 0:
            failed.append(name)
    if failed:
        print(f"[run_all] failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
