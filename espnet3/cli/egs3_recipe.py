"""An upstream ESPnet3 recipe (``egs3/<corpus>/<task>``) as ``espnet3 create-dataset`` runs it.

What the recipe's ``run.py`` would do for its data stages, without it: the training config
(``conf/training.yaml``, or ``--config``) is merged over ``egs3.TEMPLATE.<task>``'s
defaults the way upstream's ``load_and_merge_config`` does, ``key=value`` overrides are
applied, the system class the recipe's ``run.py`` imports is built (else its template's;
``BaseSystem`` when neither names one), and the requested stages run from inside the recipe directory, as ``cd
egs3/<corpus>/<task> && python run.py --stages ...`` would. The recipe's ``egs3`` tree is
importable in this process and in every worker and job (:mod:`espnet3.utils.egs3_tree`).

Example::

    espnet3 create-dataset ~/espnet/egs3/esc50/cls --stages create_dataset remove_long_short
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from espnet3.errors import ConfigError
from espnet3.utils.egs3_tree import egs3_dir_of, register
from espnet3.utils.imports import import_object

DEFAULT_CONFIG = Path("conf") / "training.yaml"
#: ``from espnet3.systems.<task>.system import <Class>`` in a recipe's run.py.
_SYSTEM_IMPORT = re.compile(r"from\s+(espnet3\.systems\.[\w.]+)\s+import\s+\(?\s*(\w+System)\b")


def is_egs3_recipe(recipe_dir: str | os.PathLike) -> bool:
    """Whether ``recipe_dir`` is ``<...>/egs3/<corpus>/<task>`` (and not espnet3's own format,
    which has ``conf/dataset.yaml``)."""
    recipe = Path(recipe_dir).resolve()
    tree = egs3_dir_of(recipe)
    return (
        tree is not None
        and len(recipe.relative_to(tree).parts) == 2
        and not (recipe / "conf" / "dataset.yaml").is_file()
    )


def load_training_config(
    recipe_dir: str | os.PathLike, config_file: str | os.PathLike | None, overrides: Sequence[str]
) -> Any:
    """The recipe's training config over its template's defaults, overrides applied, resolved
    (relative paths as seen from the recipe directory)."""
    from omegaconf import OmegaConf

    from espnet3.cli.recipe_config import apply_override, config_path, one_line
    from espnet3.utils.config_utils import load_and_merge_config

    recipe = Path(recipe_dir).resolve()
    register(egs3_dir_of(recipe))
    path = config_path(recipe, config_file or DEFAULT_CONFIG)
    task = recipe.name
    with inside(recipe):
        config = load_and_merge_config(
            path, "training.yaml", default_package=f"egs3.TEMPLATE.{task}", resolve=False
        )
        for override in overrides:
            apply_override(config, override)
        try:
            OmegaConf.resolve(config)
        except Exception as err:  # interpolation errors come in many OmegaConf classes
            raise ConfigError(f"config {path} cannot be resolved: {one_line(err)}") from None
    return config


def system_class(recipe_dir: str | os.PathLike) -> type:
    """The system class the recipe's ``run.py`` imports; else the one its template's
    (``egs3/TEMPLATE/<task>/run.py``, which most recipes' run.py call) imports; else
    ``BaseSystem``."""
    recipe = Path(recipe_dir).resolve()
    tree = egs3_dir_of(recipe)
    for run in (recipe / "run.py", *([tree / "TEMPLATE" / recipe.name / "run.py"] if tree else [])):
        if run.is_file():
            match = _SYSTEM_IMPORT.search(run.read_text(encoding="utf-8"))
            if match is not None:
                return import_object(f"{match.group(1)}.{match.group(2)}")
    from espnet3.systems.base.system import BaseSystem

    return BaseSystem


def run_stages(recipe_dir: str | os.PathLike, config: Any, stages: Sequence[str]) -> list[str]:
    """Run ``stages`` of the recipe's system on ``config``, from inside the recipe; the stages
    run."""
    recipe = Path(recipe_dir).resolve()
    with inside(recipe):
        system = system_class(recipe)(training_config=config)
        methods = []
        for stage in stages:  # every name checked before anything runs
            method = getattr(system, stage, None) if not stage.startswith("_") else None
            if method is None:
                raise ConfigError(
                    f"{type(system).__name__} has no stage {stage!r}: its data stages are the "
                    "methods the recipe's run.py lists (create_dataset, collect_stats, ...)"
                )
            methods.append(method)
        for method in methods:
            method()
    return list(stages)


@contextlib.contextmanager
def inside(directory: Path) -> Iterator[None]:
    """Work from ``directory`` for the block, as ``cd <recipe> && python run.py`` does."""
    previous = Path.cwd()
    os.chdir(directory)
    try:
        yield
    finally:
        os.chdir(previous)
