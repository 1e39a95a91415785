"""ESPnet2 tasks as model factories: a model from a task name and a model config.

Example (needs ESPnet2)::

    model = get_espnet_model("espnet2.tasks.asr.ASRTask", {"frontend": "default"})
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from espnet3.errors import ConfigError
from espnet3.utils.atomic import atomic_write_text
from espnet3.utils.checks import to_plain
from espnet3.utils.imports import import_object


def get_task_class(task: str) -> Any:
    """The ESPnet2 task class ``task`` names (a dotted path such as
    ``espnet2.tasks.asr.ASRTask``), or an error naming it."""
    try:
        return import_object(task)
    except Exception as err:
        raise ConfigError(
            f"Failed to get task class from {task!r} ({err}): name an ESPnet2 task, e.g. "
            "espnet2.tasks.asr.ASRTask"
        ) from None


def get_espnet_model(task: str, config: Mapping[str, Any] | Any) -> Any:
    """``task.build_model`` on the task's default config updated with ``config``."""
    task_class = get_task_class(task)
    return task_class.build_model(argparse.Namespace(**_with_defaults(task_class, config)))


def save_espnet_config(
    task: str, config: Mapping[str, Any] | Any, output_path: str | os.PathLike
) -> Path:
    """Write the ESPnet2 ``config.yaml`` of ``config``: the task's defaults updated with it,
    without YAML anchors (as ESPnet2 writes it). ``output_path`` is the file, or a directory
    (an existing one, or a path without suffix) to hold ``config.yaml``. Returns the file."""
    path = Path(output_path)
    if path.is_dir() or not path.suffix:
        path = path / "config.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    merged = _with_defaults(get_task_class(task), config)
    atomic_write_text(path, yaml.dump(merged, Dumper=_NoAliases, indent=4, sort_keys=False))
    return path


def _with_defaults(task_class: Any, config: Mapping[str, Any] | Any) -> dict[str, Any]:
    argv, sys.argv = sys.argv, ["espnet3"]  # get_default_config parses sys.argv
    try:
        defaults = task_class.get_default_config()
    finally:
        sys.argv = argv
    return {**defaults, **to_plain(config)}


class _NoAliases(yaml.SafeDumper):
    def ignore_aliases(self, data: Any) -> bool:
        return True
