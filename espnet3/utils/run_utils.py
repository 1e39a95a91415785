"""One experiment identity across a recipe's configs, as upstream ESPnet3's ``run.py`` keeps it.

A recipe run loads up to five configs (training, inference, metrics, publication, demo). The
training config names the experiment (``exp_tag``, ``exp_dir``); the others must refer to the
same one, so :func:`apply_training_experiment_context` copies it into them, logging what it
inserts and warning about what it overrides. :func:`validate_experiment_context` refuses an
``infer`` or ``measure`` run that has no experiment to refer to, and
:func:`resolve_loaded_configs` resolves every interpolation once everything is in place.

Example:
    >>> from omegaconf import OmegaConf
    >>> import logging
    >>> training = OmegaConf.create({"exp_tag": "t1", "exp_dir": "exp/t1"})
    >>> inference = OmegaConf.create({"exp_tag": None, "inference_dir": "${exp_dir}/infer"})
    >>> apply_training_experiment_context(training_config=training,
    ...     inference_config=inference, metrics_config=None, publication_config=None,
    ...     log=logging.getLogger("doc"))
    >>> resolve_loaded_configs(inference); inference.inference_dir
    'exp/t1/infer'
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

from espnet3.errors import ConfigError

#: What the training config hands to the inference, metrics, publication and demo configs.
TRAINING_CONTEXT = ("exp_tag", "exp_dir")
#: What the inference config hands to the metrics config, and then to publication.
INFERENCE_CONTEXT = ("exp_tag", "exp_dir", "inference_dir")
PUBLICATION_CONTEXT = ("inference_dir",)


def apply_training_experiment_context(
    *,
    training_config: Any,
    inference_config: Any,
    metrics_config: Any,
    publication_config: Any = None,
    demo_config: Any = None,
    log: logging.Logger,
) -> None:
    """Copy the experiment identity from config to config, in place (module docstring)."""
    copies = [
        (training_config, "training_config", inference_config, "inference_config", TRAINING_CONTEXT),
        (training_config, "training_config", metrics_config, "metrics_config", TRAINING_CONTEXT),
        (training_config, "training_config", publication_config, "publication_config", TRAINING_CONTEXT),
        (training_config, "training_config", demo_config, "demo_config", TRAINING_CONTEXT),
        (inference_config, "inference_config", metrics_config, "metrics_config", INFERENCE_CONTEXT),
        (inference_config, "inference_config", publication_config, "publication_config", PUBLICATION_CONTEXT),
    ]  # fmt: skip
    for source, source_name, target, target_name, keys in copies:
        if source is None or target is None:
            continue
        for key in keys:
            value = source.get(key)
            if _empty(value):
                continue
            current = target.get(key)
            if _empty(current):
                log.info("Inserted %s.%s from %s", target_name, key, source_name)
            elif current != value:
                log.warning(
                    "Overriding %s.%s with %s value: %r -> %r",
                    target_name,
                    key,
                    source_name,
                    current,
                    value,
                )
            else:
                continue
            target[key] = value
    _model_for_demo(publication_config, demo_config, log)


def _model_for_demo(publication: Any, demo: Any, log: logging.Logger) -> None:
    """The demo shows the published model: the Hub repository, else the packed directory."""
    if publication is None or demo is None:
        return
    for source in ("upload_model.hf_repo", "pack_model.out_dir"):
        value = OmegaConf.select(publication, source)
        if _empty(value):
            continue
        if _empty(OmegaConf.select(demo, "model.dir_or_tag")):
            if demo.get("model") is None:
                demo.model = {}
            demo.model.dir_or_tag = value
            log.info("Inserted demo_config.model.dir_or_tag from publication_config.%s", source)
        return


def validate_experiment_context(
    *,
    training_config: Any,
    inference_config: Any,
    metrics_config: Any,
    stages_to_run: Sequence[str],
) -> None:
    """Refuse ``infer``/``measure`` whose config names no experiment (without a training
    config: ``exp_tag``, or an ``exp_dir`` that neither depends on ``exp_tag`` nor was made
    from an unset one, such as ``./exp/None/metrics``)."""
    if training_config is not None:
        return
    for stage, config, name in (
        ("infer", inference_config, "inference_config"),
        ("measure", metrics_config, "metrics_config"),
    ):
        if stage in stages_to_run and config is not None and not _names_experiment(config):
            raise ConfigError(
                f"{stage} stage requires --training_config or a standalone {name} with "
                "exp_tag/exp_dir."
            )


def resolve_loaded_configs(*configs: Any) -> None:
    """Resolve every interpolation of each config (``None`` skipped), in place."""
    for config in configs:
        if config is not None:
            OmegaConf.resolve(config)


def _names_experiment(config: Any) -> bool:
    if not _empty(config.get("exp_tag")):
        return True
    exp_dir = OmegaConf.to_container(config, resolve=False).get("exp_dir")
    if not isinstance(exp_dir, str) or not exp_dir.strip() or "${exp_tag}" in exp_dir:
        return False
    return "None" not in Path(exp_dir).parts  # ./exp/None/...: made from an unset exp_tag


def _empty(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())
