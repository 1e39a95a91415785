"""ESPnet2 tasks as model factories: a model from a task name and a model config.

Example (needs ESPnet2)::

    model = get_espnet_model("espnet2.tasks.asr.ASRTask", {"frontend": "default"})
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping
from typing import Any

from espnet3.errors import ConfigError
from espnet3.utils.config import to_plain
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
    argv, sys.argv = sys.argv, ["espnet3"]  # get_default_config parses sys.argv
    try:
        defaults = task_class.get_default_config()
    finally:
        sys.argv = argv
    return task_class.build_model(argparse.Namespace(**{**defaults, **to_plain(config)}))
