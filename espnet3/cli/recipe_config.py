"""Load a recipe's config the way the command line does: base file, preset, overrides.

``RECIPE_DIR/conf/dataset.yaml`` is the base; ``--config FILE`` is merged on top of it (a
preset such as ``conf/local.yaml`` holding only a ``parallel:`` section, or a whole config);
``key=value`` overrides (OmegaConf dotlist syntax) come last. An override must name a key the
config already has, unless it starts with ``+``. ``recipe_dir`` is set to the recipe's
absolute path, so the config can place its data inside the recipe with ``${recipe_dir}``.

Example:
    >>> cfg = load_recipe_config("recipes/mini_an4/asr", overrides=["create_dataset.num_valid=2"])
    >>> cfg.create_dataset.num_valid                                     # doctest: +SKIP
    2
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from espnet3.errors import ConfigError, did_you_mean

BASE_CONFIG = Path("conf") / "dataset.yaml"


def load_recipe_config(
    recipe_dir: str | os.PathLike,
    config_file: str | os.PathLike | None = None,
    overrides: Sequence[str] = (),
) -> Any:
    """The merged, fully resolved config of ``recipe_dir`` as an OmegaConf ``DictConfig``."""
    from omegaconf import OmegaConf

    recipe = Path(recipe_dir).resolve()
    if not recipe.is_dir():
        raise ConfigError(f"recipe directory {str(recipe_dir)!r} does not exist: check the path")
    layers = []
    if (recipe / BASE_CONFIG).is_file():
        layers.append(_load_yaml(recipe / BASE_CONFIG))
    if config_file is not None:
        layers.append(_load_yaml(config_path(recipe, config_file)))
    if not layers:
        raise ConfigError(
            f"recipe {recipe} has no {BASE_CONFIG} and no --config was given: pass --config FILE"
        )
    config = OmegaConf.merge(*layers, {"recipe_dir": str(recipe)})
    for override in overrides:
        apply_override(config, override)
    try:
        OmegaConf.resolve(config)
    except Exception as err:  # interpolation errors come in many OmegaConf classes
        raise ConfigError(f"config of {recipe} cannot be resolved: {one_line(err)}") from None
    return config


def config_path(recipe: Path, config_file: str | os.PathLike) -> Path:
    """``--config``: as given when that file exists (from the working directory, or absolute),
    else inside the recipe (``conf/local.yaml`` means ``RECIPE_DIR/conf/local.yaml``).

    Example:
        >>> config_path(Path("recipes/mini_an4/asr"), "conf/local.yaml").as_posix()
        'recipes/mini_an4/asr/conf/local.yaml'
    """
    given = Path(config_file)
    if given.is_file() or given.is_absolute():
        return given
    in_recipe = recipe / given
    if in_recipe.is_file():
        return in_recipe
    raise ConfigError(
        f"config file {str(config_file)!r} does not exist (looked in {Path.cwd()} and in the "
        f"recipe {recipe}): check the path"
    )


def _load_yaml(path: Path) -> Any:
    from espnet3.utils.config_files import load_yaml

    if not path.is_file():
        raise ConfigError(f"config file {str(path)!r} does not exist: check the path")
    try:
        return load_yaml(path)
    except ConfigError:
        raise
    except Exception as err:
        raise ConfigError(f"config file {path} is not valid YAML: {one_line(err)}") from None


def apply_override(config: Any, override: str) -> None:
    from omegaconf import OmegaConf

    key, sep, _ = override.partition("=")
    adding = key.startswith("+")
    key = key.lstrip("+")
    if not sep or not key:
        raise ConfigError(
            f"override {override!r} is not key=value: write e.g. create_dataset.archive=PATH"
        )
    if not adding and OmegaConf.select(config, key, default=_MISSING) is _MISSING:
        parent, _, leaf = key.rpartition(".")
        node = OmegaConf.select(config, parent) if parent else config
        known = list(node.keys()) if OmegaConf.is_dict(node) else []
        raise ConfigError(
            f"override {override!r}: the config has no key {key!r}{did_you_mean(leaf, known)}; "
            f"prefix it with + to add a new key (+{key}=...)"
        )
    try:
        # Parsed as YAML the way a dotlist is; update() also reaches into lists (stages.0.x).
        value = OmegaConf.from_dotlist([f"value={override.partition('=')[2]}"]).value
        OmegaConf.update(config, key, value, merge=True, force_add=adding)
    except Exception as err:
        raise ConfigError(f"override {override!r} cannot be applied: {one_line(err)}") from None


def one_line(err: BaseException) -> str:
    return " ".join(str(err).split("\n")[0].split())


_MISSING = object()
