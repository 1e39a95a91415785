"""ASR recipes (``egs3/<corpus>/asr``): ``create_dataset``, ``train_tokenizer``, ``collect_stats``.

``train_tokenizer`` trains the sentencepiece model of the ``tokenizer:`` section on the text
its ``text_builder`` gives (``func``: a dotted function name, called with the section's other
keys; it returns a text file's path or the lines themselves)::

    tokenizer:
      save_path: ${data_dir}/tokenizer
      vocab_size: 30
      model_type: bpe
      text_builder: {func: mymodule.transcripts, manifest: ${data_dir}/manifest/train.tsv}

The text goes to ``tokenizer.train_file`` (default ``<data_dir>/train_tokenizer/train.txt``);
``<save_path>/<model_type>.model`` (and ``.vocab``) and ``<save_path>/tokens.txt`` (the list
ESPnet2 writes) follow. An existing model is kept. ``train`` trains the tokenizer when there is
none, then says that training itself is not part of this distribution.

Example::

    ASRSystem(training_config=cfg).train_tokenizer()
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable
from importlib import import_module
from pathlib import Path
from typing import Any

from espnet3.errors import SetupError
from espnet3.systems.asr.tokenizers.sentencepiece import train_sentencepiece
from espnet3.systems.base.system import BaseSystem
from espnet3.utils.atomic import atomic_write_text
from espnet3.utils.checks import as_mapping
from espnet3.utils.imports import import_object

log = logging.getLogger(__name__)


class ASRSystem(BaseSystem):
    """An ASR recipe's system; its tokenizer stage logs beside the tokenizer."""

    def __init__(self, *args: Any, stage_log_mapping: dict | None = None, **kwargs: Any):
        mapping = {"train_tokenizer": "training_config.tokenizer.save_path"}
        super().__init__(
            *args, stage_log_mapping={**mapping, **(stage_log_mapping or {})}, **kwargs
        )

    def train(self, *args: Any, **kwargs: Any) -> Any:
        """The tokenizer when there is none yet, then the base ``train`` stage."""
        self._reject_stage_args("train", args, kwargs)
        if self._setting("dataset") is None and self._setting("dataset_dir") is None:
            raise SetupError(
                "training_config.dataset or training_config.dataset_dir must be set for training"
            )
        if not self._has_tokenizer():
            self.train_tokenizer()
        return super().train()

    def train_tokenizer(self, *args: Any, **kwargs: Any) -> None:
        """Train the sentencepiece model of ``training_config.tokenizer`` (module docstring)."""
        self._reject_stage_args("train_tokenizer", args, kwargs)
        if self._has_tokenizer():
            log.info("Tokenizer already exists. Skipping train_tokenizer().")
            return
        section = self._tokenizer_section()
        builder = as_mapping(section.get("text_builder"), "tokenizer.text_builder")
        if not builder.get("func"):
            raise SetupError(
                "training_config.tokenizer.text_builder.func must be set to build tokenizer text."
            )
        texts = _texts(_function(str(builder.pop("func")))(**builder))
        save = Path(section["save_path"])
        train_file = Path(section.get("train_file") or _default_train_file(self, save))
        if train_file.exists():
            raise SetupError(
                f"Tokenizer training text already exists: {train_file}: remove it, or set "
                "tokenizer.train_file to a new path"
            )
        train_file.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(train_file, "".join(f"{t}\n" for t in texts))
        options = {k: section[k] for k in ("vocab_size", "character_coverage") if k in section}
        model = train_sentencepiece(
            train_file, save, model_type=section.get("model_type", "bpe"), **options
        )
        log.info("Tokenizer trained on %d line(s): %s", len(texts), model)

    def _tokenizer_section(self) -> dict[str, Any]:
        section = as_mapping(self._setting("tokenizer"), "tokenizer")
        self._get_required_config(
            section, "save_path", "training_config.tokenizer.save_path must be set"
        )
        return section

    def _has_tokenizer(self) -> bool:
        section = self._tokenizer_section()
        stem = Path(section["save_path"]) / section.get("model_type", "bpe")
        return stem.with_suffix(".model").is_file() and stem.with_suffix(".vocab").is_file()


def _function(dotted: str) -> Any:
    """The text builder ``module.function`` names (espnet3's message when it cannot be found)."""
    module, _, name = dotted.rpartition(".")
    try:
        return getattr(import_module(module), name)
    except (ImportError, AttributeError, ValueError):
        return import_object(dotted)


def _default_train_file(system: BaseSystem, save: Path) -> Path:
    data_dir = system._setting("data_dir")
    return Path(data_dir) / "train_tokenizer" / "train.txt" if data_dir else save / "train.txt"


def _texts(built: Any) -> list[str]:
    """The lines a text builder gave: a file's, or the strings themselves."""
    if isinstance(built, (str, os.PathLike)):
        path = Path(built)
        if not path.is_file():
            raise SetupError(f"Tokenizer text file not found: {path}")
        texts = path.read_text(encoding="utf-8").splitlines()
    elif isinstance(built, Iterable):
        texts = [str(t) for t in built]
    else:
        raise SetupError(
            f"text_builder must return a path or iterable of strings (got {type(built).__name__})"
        )
    if not texts:
        raise SetupError("Tokenizer text_builder returned no text. Check dataset preparation.")
    return texts
