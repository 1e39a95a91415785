"""Classification recipes: ``create_dataset``, ``remove_long_short``, ``prepare_labels``, ``collect_stats``.

``remove_long_short`` is :func:`espnet3.components.data.remove_long_short.remove_long_short`.
``prepare_labels`` writes the label inventory of a manifest's third column (several labels per
row, separated by spaces, for multi-label sets), most frequent first, with ``add_symbol``
entries inserted (``"<unk>:-1"``: last)::

    prepare_labels:
      save_path: ${data_dir}
      filename: token_list
      manifest_path: ${data_dir}/manifest_filtered/train.tsv
      add_symbol: ["<unk>:-1"]

Example::

    CLSSystem(training_config=cfg).prepare_labels()
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from espnet3.components.data.create_token_list import create_token_list, transcripts
from espnet3.components.data.remove_long_short import remove_long_short
from espnet3.errors import SetupError
from espnet3.systems.base.system import BaseSystem
from espnet3.utils.checks import as_mapping

log = logging.getLogger(__name__)


class CLSSystem(BaseSystem):
    """A classification recipe's system."""

    def __init__(self, *args: Any, stage_log_mapping: dict | None = None, **kwargs: Any):
        mapping = {
            "remove_long_short": "training_config.remove_long_short.save_path",
            "prepare_labels": "training_config.prepare_labels.save_path",
        }
        super().__init__(
            *args, stage_log_mapping={**mapping, **(stage_log_mapping or {})}, **kwargs
        )

    def remove_long_short(self, *args: Any, **kwargs: Any) -> None:
        """Drop utterances outside the configured durations."""
        self._reject_stage_args("remove_long_short", args, kwargs)
        with self.stage_cluster():
            remove_long_short(self.training_config)

    def prepare_labels(self, *args: Any, **kwargs: Any) -> None:
        """Write the label inventory (module docstring)."""
        self._reject_stage_args("prepare_labels", args, kwargs)
        section = as_mapping(
            self._get_required_config(
                self.training_config,
                "prepare_labels",
                "training_config.prepare_labels must be set for prepare_labels stage.",
            ),
            "prepare_labels",
        )
        manifest = Path(section.get("manifest_path") or "data/manifest/train.tsv")
        if manifest.is_file():
            rows = manifest.read_text(encoding="utf-8").splitlines()
            unlabelled = sum(1 for row in rows if row.strip()) - sum(
                1 for _ in transcripts(manifest)
            )
            if unlabelled:
                log.warning("%d row(s) of %s have no label", unlabelled, manifest)
            if len(rows) == unlabelled:
                raise SetupError(f"No labels found in {manifest}: check its third column")
        create_token_list(
            {
                "create_token_list": {
                    "save_path": section.get("save_path"),
                    "filename": section.get("filename"),
                    "manifest_path": str(manifest),
                    "token_type": "word",
                    "add_symbol": list(section.get("add_symbol") or []),
                }
            }
        )
