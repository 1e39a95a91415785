"""``espnet3 describe DATA_DIR`` and ``espnet3 export kaldi DATA_DIR OUT``.

``describe`` prints, per split, the utterance count, total hours, mean duration, speakers and
vocabulary size (``--full`` adds Lhotse's own ``describe``; ``--plot PNG`` writes a duration
histogram). ``export kaldi`` writes one Kaldi data directory per split that ESPnet2's
``asr.sh`` can start from. Both read the splits as :mod:`espnet3.data.data_dir` finds them.

Example:
    >>> main(["describe", "recipes/mini_an4/asr/data"])          # doctest: +SKIP
    split  utterances  hours   mean s  speakers  vocabulary
    train  4           0.0019  1.71    3         11
"""

from __future__ import annotations

import argparse
from typing import Any


def add_parser(subparsers: Any) -> None:
    """Register ``describe`` and ``export``."""
    describe = subparsers.add_parser(
        "describe",
        help="utterances, hours, speakers and vocabulary of each split of a data directory",
        description="Summarize every split of DATA_DIR (Lhotse cuts, TSV/JSONL manifests or "
        "Kaldi directories).",
    )
    describe.add_argument("data_dir", metavar="DATA_DIR")
    describe.add_argument("--full", action="store_true", help="add Lhotse's describe per split")
    describe.add_argument("--plot", metavar="PNG", help="write a duration histogram here")
    describe.set_defaults(func=_describe)

    export = subparsers.add_parser(
        "export",
        help="write a data directory in another toolkit's format",
        description="Export every split of DATA_DIR for another toolkit.",
    )
    formats = export.add_subparsers(dest="export_format", metavar="FORMAT", required=True)
    kaldi = formats.add_parser(
        "kaldi",
        help="Kaldi data directories (wav.scp, text, utt2spk, spk2utt ...)",
        description="Write OUT/<split>/ Kaldi data directories (Lhotse's Kaldi export, plus "
        "spk2utt), from which ESPnet2's asr.sh can start.",
    )
    kaldi.add_argument("data_dir", metavar="DATA_DIR")
    kaldi.add_argument("out_dir", metavar="OUT")
    kaldi.set_defaults(func=_export_kaldi)


def _describe(args: argparse.Namespace) -> int:
    from espnet3.data.data_dir import describe, find_splits, load_splits, plot_durations, utterances

    print(describe(args.data_dir))
    if args.full:
        for split, cuts in load_splits(args.data_dir).items():
            print(f"\n{split}:")
            cuts.describe()
    if args.plot:
        durations = {
            split: [duration for duration, _, _ in utterances(path)]
            for split, path in find_splits(args.data_dir).items()
        }
        print(f"duration histogram: {plot_durations(durations, args.plot)}")
    return 0


def _export_kaldi(args: argparse.Namespace) -> int:
    from espnet3.data.data_dir import export_kaldi

    for path in export_kaldi(args.data_dir, args.out_dir):
        print(f"wrote {path}")
    return 0
