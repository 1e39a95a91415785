"""``espnet3 describe DATA_DIR`` and ``espnet3 export kaldi DATA_DIR OUT``.

``describe`` prints, per split, the utterance count, total hours, mean duration, speakers and
vocabulary size (``--full`` adds Lhotse's own ``describe``; ``--plot PNG`` writes a duration
histogram; a recipe directory stands for the ``data_dir`` its config names). ``export kaldi``
writes one Kaldi data directory per split that ESPnet2's ``asr.sh`` can start from. Both read the splits as :mod:`espnet3.data.data_dir` finds them.

Example:
    >>> main(["describe", "recipes/mini_an4/asr/data"])          # doctest: +SKIP
    split  utterances  hours   mean s  speakers  vocabulary
    train  4           0.0019  1.71    3         11
"""

from __future__ import annotations

import argparse
import array
import contextlib
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from espnet3.errors import ConfigError


def add_parser(subparsers: Any) -> None:
    """Register ``describe`` and ``export``."""
    describe = subparsers.add_parser(
        "describe",
        help="utterances, hours, speakers and vocabulary of each split of a data directory",
        description="Summarize every split of DATA_DIR (Lhotse cuts, TSV/JSONL manifests or "
        "Kaldi directories). Given a recipe directory, describe the data_dir its config names.",
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

    data_dir = _data_dir_of(args.data_dir)
    print(describe(data_dir))
    if args.full:
        for split, cuts in load_splits(data_dir).items():
            print(f"\n{split}:")
            cuts.describe()
    if args.plot:
        durations = {  # 8 bytes per utterance
            split: array.array("d", (duration for duration, _, _ in utterances(path)))
            for split, path in find_splits(data_dir).items()
        }
        title = f"utterance durations of {data_dir}"
        print(f"duration histogram: {plot_durations(durations, args.plot, title)}")
    return 0


def _data_dir_of(path: str) -> str:
    """``path``, or, when it is an espnet3 recipe (``conf/dataset.yaml``), the ``data_dir`` its
    config names (said on stderr); an error pointing at the data directory for a recipe that
    has not prepared one yet."""
    from espnet3.cli.recipe_config import BASE_CONFIG, load_recipe_config
    from espnet3.data.data_dir import find_splits

    recipe = Path(path)
    if not (recipe / BASE_CONFIG).is_file():
        if (recipe / "conf").is_dir():  # an upstream egs3 recipe: its data is in data/
            with _recipe_hint(path, str(recipe / "data"), "holds no split itself"):
                find_splits(path)
        return path
    data_dir = load_recipe_config(recipe).get("data_dir")
    if data_dir is None:
        raise ConfigError(
            f"{path} is a recipe whose {BASE_CONFIG} sets no data_dir: pass the data directory "
            f"it prepares, e.g. espnet3 describe {recipe / 'data'}"
        )
    with _recipe_hint(path, str(data_dir), "its data directory holds no split yet"):
        find_splits(data_dir)
    print(f"describing {data_dir}, the data directory of recipe {path}", file=sys.stderr)
    return str(data_dir)


@contextlib.contextmanager
def _recipe_hint(recipe: str, data_dir: str, why: str) -> Iterator[None]:
    """A data directory of the recipe ``recipe`` without splits, as an error that says to
    prepare it first, then describe ``data_dir``."""
    try:
        yield
    except ConfigError:
        raise ConfigError(
            f"{recipe} is a recipe directory and {why}: prepare its data (espnet3 "
            f"create-dataset {recipe}), then describe that: espnet3 describe {data_dir}"
        ) from None


def _export_kaldi(args: argparse.Namespace) -> int:
    from espnet3.data.data_dir import export_kaldi

    for path in export_kaldi(args.data_dir, args.out_dir):
        print(f"wrote {path}")
    return 0
