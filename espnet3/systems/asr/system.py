"""ASR recipes (``egs3/<corpus>/asr``): ``create_dataset``, ``train_tokenizer``, ``collect_stats``.

``train_tokenizer`` trains the sentencepiece model of the ``tokenizer:`` section on the text
its ``text_builder`` gives (``func``: a dotted function name, called with the section's other
keys; it returns a text file's path or the lines themselves)::

    tokenizer:
      save_path: ${data_dir}/tokenizer
      vocab_size: 30
      model_type: bpe
      text_builder: {func: mymodule.transcripts, manifest: ${data_dir}/manifest/train.tsv}

``<save_path>/<model_type>.model`` (and ``.vocab``) and ``<save_path>/tokens.txt`` (``<blank>``,
``<unk>``, the pieces, ``<sos/eos>``: the list ESPnet2 writes) are written; an existing model
is kept.

Example::

    ASRSystem(training_config=cfg).train_tokenizer()
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from espnet3.components.data.tokenizers import sentencepiece_token_list, train_sentencepiece
from espnet3.errors import ContractError, SetupError
from espnet3.systems.base.system import BaseSystem
from espnet3.utils.atomic import atomic_write_text
from espnet3.utils.config import as_mapping
from espnet3.utils.imports import import_object

log = logging.getLogger(__name__)


class ASRSystem(BaseSystem):
    """An ASR recipe's system; its tokenizer stage logs beside the tokenizer."""

    def __init__(self, *args: Any, stage_log_mapping: dict | None = None, **kwargs: Any):
        mapping = {"train_tokenizer": "training_config.tokenizer.save_path"}
        super().__init__(
            *args, stage_log_mapping={**mapping, **(stage_log_mapping or {})}, **kwargs
        )

    def train_tokenizer(self, *args: Any, **kwargs: Any) -> None:
        """Train the sentencepiece model of ``training_config.tokenizer`` (module docstring)."""
        self._reject_stage_args("train_tokenizer", args, kwargs)
        section = as_mapping(self._setting("tokenizer"), "tokenizer")
        save = Path(
            self._get_required_config(
                section, "save_path", "training_config.tokenizer.save_path must be set"
            )
        )
        model_type = section.get("model_type", "bpe")
        if (save / f"{model_type}.model").is_file() and (save / f"{model_type}.vocab").is_file():
            log.info("Tokenizer already exists. Skipping train_tokenizer().")
            return
        builder = as_mapping(section.get("text_builder"), "tokenizer.text_builder")
        if not builder.get("func"):
            raise SetupError(
                "training_config.tokenizer.text_builder.func must be set to build tokenizer text."
            )
        texts = _texts(import_object(builder.pop("func"))(**builder))
        train_file = Path(section.get("train_file") or _default_train_file(self, save))
        if train_file.exists():
            raise SetupError(
                f"Tokenizer training text already exists: {train_file}: remove it, or set "
                "tokenizer.train_file to a new path"
            )
        atomic_write_text(train_file, "".join(f"{t}\n" for t in texts))
        options = {k: section[k] for k in ("vocab_size", "character_coverage") if k in section}
        model = train_sentencepiece(
            train_file, save, prefix=model_type, model_type=model_type, **options
        )
        tokens = ["<blank>", "<unk>", *sentencepiece_token_list(model), "<sos/eos>"]
        atomic_write_text(save / "tokens.txt", "".join(f"{t}\n" for t in tokens))
        log.info("Tokenizer trained on %d line(s): %s", len(texts), model)


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
        raise ContractError(
            f"text_builder must return a path or iterable of strings (got {type(built).__name__})"
        )
    if not texts:
        raise SetupError("Tokenizer text_builder returned no text. Check dataset preparation.")
    return texts
