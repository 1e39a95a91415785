"""``espnet3 create-dataset RECIPE_DIR``: build a recipe's datasets, then run its stages.

The recipe config (see :mod:`espnet3.cli.recipe_config`) gives ``parallel:`` (where work
runs), ``dataset:`` (whose builders :meth:`BaseSystem.create_dataset` runs) and ``stages:``,
a list of ``{name, func, args}`` run afterwards in order as ``func(**args)``; ``func`` is
resolved by :func:`espnet3.cli.recipe_refs.resolve_object`. One cluster serves every step,
started by the first map whose remaining work is worth it (small runs stay in process).

``RECIPE_DIR`` may also be an upstream ESPnet3 recipe, ``egs3/<corpus>/<task>``, as it is:
its ``conf/training.yaml`` (or ``--config``) over its template's defaults, and the data stages
``--stages`` names (default ``create_dataset``) of the system its ``run.py`` uses
(:mod:`espnet3.cli.egs3_recipe`).

Example:
    >>> report = create_dataset(load_recipe_config("recipes/mini_an4/asr"))   # doctest: +SKIP
    >>> [d["steps"] for d in report["datasets"]][0]   # doctest: +SKIP
    ['prepare_source', 'build']
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from espnet3.cli.recipe_config import load_recipe_config
from espnet3.cli.recipe_refs import resolve_object
from espnet3.errors import ConfigError
from espnet3.utils.checks import as_mapping, check_keys, to_plain

STAGE_KEYS = ("name", "func", "args")


def add_parser(subparsers: Any) -> None:
    """Register ``create-dataset``."""
    parser = subparsers.add_parser(
        "create-dataset",
        help="prepare a recipe's data (builders, then stages such as features)",
        description="Build every dataset the recipe config references (download, unpack, "
        "convert, write manifests), then run its stages (e.g. features). Finished work is "
        "never redone: running it again only completes what is missing.",
    )
    parser.add_argument("recipe_dir", help="the recipe directory, e.g. recipes/mini_an4/asr")
    parser.add_argument(
        "--config",
        help="YAML merged over RECIPE_DIR/conf/dataset.yaml: a path, or one inside the recipe (e.g. conf/local.yaml)",
    )
    parser.add_argument(
        "--stages",
        nargs="+",
        metavar="STAGE",
        help="for an upstream egs3 recipe: the data stages to run, in order (default: "
        "create_dataset), e.g. create_dataset remove_long_short prepare_labels",
    )
    parser.add_argument(
        "overrides", nargs="*", metavar="KEY=VALUE", help="config overrides, e.g. data_dir=/scratch"
    )
    parser.set_defaults(func=_main)


def create_dataset(config: Any) -> dict[str, Any]:
    """Run the builders and then the stages of ``config``; return what each step did."""
    from espnet3.parallel import get_client, use_parallel
    from espnet3.systems.base.system import BaseSystem

    system = BaseSystem(config)
    stages = [_stage(entry, i, system.recipe_dir) for i, entry in enumerate(_stages(config))]
    # Maps make the recipe packages imported here importable on the workers. The cluster
    # starts only once a map's remaining work is worth it (parallel.start: now starts it at
    # once), so a small run is never slower than a sequential one.
    with (
        use_parallel(system.parallel),
        get_client(start=system.parallel.start or "when_worth_it"),
    ):
        datasets = system.prepare_datasets()
        results = {name: func(**args) for name, func, args in stages}
    return {"datasets": datasets, "stages": results}


def _stages(config: Any) -> list[Any]:
    stages = to_plain(config.get("stages")) or []
    if not isinstance(stages, list):
        raise ConfigError(f"stages must be a list of {{name, func, args}}, got {stages!r}")
    return stages


def _stage(entry: Any, index: int, recipe_dir: Any) -> tuple[str, Any, dict[str, Any]]:
    where = f"stages[{index}]"
    entry = as_mapping(entry, where)
    check_keys(entry, STAGE_KEYS, where)
    if "func" not in entry:
        raise ConfigError(f"{where} has no func: name the function, e.g. mini_an4/asr:NAME")
    func = resolve_object(entry["func"], recipe_dir)
    name = str(entry.get("name") or entry["func"])
    return name, func, as_mapping(entry.get("args"), f"{where}.args")


def _main(args: argparse.Namespace) -> int:
    from espnet3.cli import egs3_recipe

    if args.stages:  # --stages takes every word after it: key=value words are overrides
        args.overrides = [*args.overrides, *(w for w in args.stages if "=" in w)]
        args.stages = [w for w in args.stages if "=" not in w]
    if egs3_recipe.is_egs3_recipe(args.recipe_dir):
        return _main_egs3(args)
    if args.stages:
        raise ConfigError(
            f"--stages is for upstream egs3 recipes; {args.recipe_dir} lists its stages in its "
            "config (stages:)"
        )
    config = load_recipe_config(args.recipe_dir, args.config, args.overrides)
    report = create_dataset(config)
    for item in report["datasets"]:
        what = ", ".join(item["steps"]) or "already built"
        print(f"dataset {item['data_src'] or 'of the recipe'}: {what}")
    for name, result in report["stages"].items():
        print(f"stage {name}: {json.dumps(result, sort_keys=True)}")
    _print_summary(config.get("data_dir"))
    return 0


def _main_egs3(args: argparse.Namespace) -> int:
    from espnet3.cli import egs3_recipe
    from espnet3.parallel import ParallelConfig, get_client

    config = egs3_recipe.load_training_config(args.recipe_dir, args.config, args.overrides)
    parallel = ParallelConfig.from_any(config.get("parallel"))
    with get_client(parallel, start=parallel.start or "when_worth_it"):
        ran = egs3_recipe.run_stages(args.recipe_dir, config, args.stages or ["create_dataset"])
    print(f"recipe {args.recipe_dir}: {', '.join(ran)} done")
    return 0


def _print_summary(data_dir: Any) -> None:
    """``espnet3 describe DATA_DIR``, when the config names a data directory that has splits."""
    from espnet3.data.data_dir import describe

    if data_dir is None:
        return
    try:
        print(f"\n{data_dir}:\n{describe(data_dir)}")
    except ConfigError:  # no split this command can read there
        pass
