"""``espnet3 run RECIPE_DIR``: apply the runner of the config's ``run:`` section.

```yaml
run:
  runner: mini_an4/asr:FbankRunner      # a BaseRunner subclass (REF:NAME or dotted name)
  provider: mini_an4/asr:FbankProvider  # an EnvironmentProvider subclass
  provider_config: {split: test, data_dir: "${data_dir}", num_mel_bins: 80}
  params: {out_dir: "${data_dir}/fbank_run", min_duration: 0.1}
  indices: null                         # null: every index of the provider's dataset
  output: ${recipe_dir}/exp/run/results.jsonl
  runner_args: {}                       # e.g. {async_mode: true, async_specs_dir: ...}
```

Results are written as JSON lines ``{"index", "result"}`` (atomically). With
``runner_args.async_mode: true`` the shards are submitted instead; follow them with
``espnet3 jobs status`` and ``espnet3 jobs collect``.

Example:
    >>> main(["run", "recipes/mini_an4/asr"])          # doctest: +SKIP
    2 result(s) written to recipes/mini_an4/asr/exp/run/results.jsonl
"""

from __future__ import annotations

import argparse
from typing import Any

from espnet3.errors import ConfigError
from espnet3.utils.checks import as_mapping, check_keys

RUN_KEYS = ("runner", "provider", "provider_config", "params", "indices", "output", "runner_args")


def add_parser(subparsers: Any) -> None:
    """Register ``run``."""
    parser = subparsers.add_parser(
        "run",
        help="apply the runner of the config's run: section",
        description="Build the provider and runner named in the config's run: section and "
        "apply the runner to its indices on the configured parallel backend.",
    )
    parser.add_argument("recipe_dir", help="the recipe directory, e.g. recipes/mini_an4/asr")
    parser.add_argument(
        "--config",
        help="YAML merged over RECIPE_DIR/conf/dataset.yaml: a path, or one inside the recipe",
    )
    parser.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="config overrides")
    parser.set_defaults(func=_main)


def run_from_config(config: Any) -> Any:
    """Apply the ``run:`` runner of ``config``; return ``[(index, result)]`` (or the submission)."""
    from espnet3.cli.recipe_refs import resolve_object
    from espnet3.parallel import get_client, use_parallel

    section = as_mapping(config.get("run"), "run")
    check_keys(section, RUN_KEYS, "run")
    for key in ("runner", "provider"):
        if key not in section:
            raise ConfigError(f"run.{key} is not set: name the class, e.g. mini_an4/asr:NAME")
    recipe_dir = config.get("recipe_dir")
    runner_cls = resolve_object(section["runner"], recipe_dir)
    provider_cls = resolve_object(section["provider"], recipe_dir)
    provider = provider_cls(section.get("provider_config"), section.get("params"))
    runner = runner_cls(provider, **as_mapping(section.get("runner_args"), "run.runner_args"))
    indices = section.get("indices")
    if indices is None:
        indices = range(len(provider.build_env_local()["dataset"]))
    # Maps make the recipe packages imported here importable on the workers.
    with use_parallel(config.get("parallel")), get_client():
        if runner.async_mode:
            return runner(list(indices))
        return list(runner.iter(list(indices)))


def _main(args: argparse.Namespace) -> int:
    from espnet3.cli.recipe_config import load_recipe_config
    from espnet3.utils.atomic import atomic_write_jsonl

    config = load_recipe_config(args.recipe_dir, args.config, args.overrides)
    results = run_from_config(config)
    if not isinstance(results, list):  # async: shards were submitted
        print(f"submitted: {results}")
        return 0
    output = config.run.get("output")
    if output is None:
        raise ConfigError("run.output is not set: give the JSONL file for the results")
    count = atomic_write_jsonl(output, ({"index": i, "result": r} for i, r in results))
    print(f"{count} result(s) written to {output}")
    return 0
