"""The ``create_token_list`` stage: the token list of a model's text, as ESPnet2 writes it.

The transcripts (third column) of a manifest are cleaned and tokenized
(:mod:`espnet3.components.data.tokenizers`); the token list is written to
``<save_path>/<filename>``, one token per line:

- ``char``, ``word`` (and ESPnet2's other types), or ``bpe`` with an existing ``bpemodel``:
  tokens by count, most frequent first (ties in first-seen order), those seen ``cutoff`` times
  or fewer left out, at most ``vocabulary_size`` entries: ESPnet2's ``tokenize_text
  --write_vocabulary``;
- ``bpe`` without a ``bpemodel``: a sentencepiece model is trained on the transcripts with
  the arguments of the ``bpe:`` section (ESPnet2 asr.sh's ``spm_train`` defaults:
  ``vocab_size: 30``, ``model_type: unigram``, ``character_coverage: 1.0``,
  ``input_sentence_size: 100000000``), saved as ``<save_path>/bpe.model`` (and ``.vocab``),
  and the list holds its pieces in vocabulary order: what asr.sh writes.

Then each ``add_symbol`` entry ``"<sym>:<index>"`` is inserted (a negative index counts from
the end: ``<sos/eos>:-1`` is last). A ``vocab_builder`` (a dotted function name, called as
``fn(texts, **vocab_builder_conf)``) replaces all of this with its own list.

Config (``training_config.create_token_list``, as upstream ESPnet3 reads it)::

    create_token_list:
      save_path: ${data_dir}/tokens          # required: the output directory
      filename: tokens.txt                   # required
      manifest_path: data/manifest/train.tsv
      token_type: char                       # char | word | bpe | phn ...
      add_symbol: ["<blank>:0", "<unk>:1", "<sos/eos>:-1"]
      bpe: {vocab_size: 100}                 # bpe without bpemodel: sentencepiece training

Example:
    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (d / "train.tsv").write_text("u1\\ta.wav\\taab\\nu2\\tb.wav\\tab\\n")
    >>> create_token_list({"create_token_list": {"save_path": str(d), "filename": "t.txt",
    ...     "manifest_path": str(d / "train.tsv"), "add_symbol": ["<blank>:0", "<sos/eos>:-1"]}})
    >>> (d / "t.txt").read_text().split()
    ['<blank>', 'a', 'b', '<sos/eos>']
"""

from __future__ import annotations

import logging
import os
from collections import Counter
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from espnet3.components.data.tokenizers import (
    build_tokenizer,
    sentencepiece_token_list,
    text_cleaner,
    train_sentencepiece,
)
from espnet3.errors import SetupError
from espnet3.utils.atomic import atomic_open, atomic_write_text
from espnet3.utils.config_utils import convert_to_dict, get_required_config
from espnet3.utils.imports import import_object

log = logging.getLogger(__name__)


def create_token_list(config: Any) -> None:
    """Run the stage on ``config`` (a training config; see the module docstring)."""
    section = get_required_config(
        config,
        "create_token_list",
        "training_config.create_token_list must be set for create_token_list stage.",
    )
    save_dir = Path(
        get_required_config(
            section,
            "save_path",
            "training_config.create_token_list.save_path must be set for create_token_list stage.",
        )
    )
    filename = get_required_config(
        section,
        "filename",
        "training_config.create_token_list.filename must be set (e.g. 'tokens.txt'); "
        "save_path is the output directory.",
    )
    save_dir.mkdir(parents=True, exist_ok=True)
    output = save_dir / filename
    manifest = Path(section.get("manifest_path", "data/manifest/train.tsv")).resolve()
    if not manifest.is_file():
        raise SetupError(
            f"Manifest file not found for token list creation: {manifest}. Please ensure the "
            "manifest file is generated and the path is correct."
        )
    clean = text_cleaner(section.get("cleaner"))
    builder = section.get("vocab_builder")
    if builder is not None:
        texts = [clean(text) for text in transcripts(manifest)]
        tokens = list(
            import_object(builder)(
                texts, **(convert_to_dict(section.get("vocab_builder_conf")) or {})
            )
        )
        _write(output, tokens)
        log.info(
            "create_token_list: built %d tokens from %d transcripts via %s -> %s",
            len(tokens),
            len(texts),
            builder,
            output,
        )
        return
    token_type = section.get("token_type", "char")
    symbols = list(section.get("add_symbol") or [])
    nonsplit = list(section.get("add_nonsplit_symbol") or [])
    bpemodel = section.get("bpemodel")
    if token_type == "bpe" and bpemodel is None:
        tokens = _trained_pieces(manifest, save_dir, clean, convert_to_dict(section.get("bpe")))
    else:
        delimiter = section.get("delimiter")
        tokenize = build_tokenizer(
            token_type,
            bpemodel=bpemodel,
            non_linguistic_symbols=section.get("non_linguistic_symbols"),
            space_symbol=section.get("space_symbol", "<space>"),
            delimiter=delimiter,
            remove_non_linguistic_symbols=section.get("remove_non_linguistic_symbols", False),
            nonsplit_symbols=[_symbol(s)[0] for s in nonsplit],
            g2p_type=section.get("g2p"),
        )
        counts: Counter[str] = Counter()
        for text in transcripts(manifest):
            if delimiter is None:  # ESPnet2 selects the text field of "utt text" this way
                text = " ".join(text.split())
            counts.update(tokenize(clean(text)))
        tokens = _by_count(
            counts, section.get("cutoff", 0), section.get("vocabulary_size", 0), len(symbols)
        )
    for entry in symbols + nonsplit:
        symbol, index = _symbol(entry)
        tokens.insert(index if index >= 0 else len(tokens) + 1 + index, symbol)
    _write(output, tokens)


def transcripts(manifest: str | os.PathLike) -> Iterator[str]:
    """The non-empty third column of each line of a manifest."""
    with open(manifest, encoding="utf-8") as f:
        for line in f:
            parts = line.rstrip().split("\t")
            if len(parts) > 2 and parts[2].strip():
                yield parts[2]


def _by_count(counts: Counter[str], cutoff: int, vocabulary_size: int, n_symbols: int) -> list[str]:
    """Tokens seen more than ``cutoff`` times, most frequent first (ties: first seen first),
    cut to leave room for ``n_symbols`` within ``vocabulary_size`` (0: no limit)."""
    tokens = [t for t, n in sorted(counts.items(), key=lambda item: -item[1]) if n > cutoff]
    total = sum(counts.values())
    if vocabulary_size and vocabulary_size > 0:
        if vocabulary_size < n_symbols:
            raise SetupError(f"vocabulary_size is too small: {vocabulary_size}")
        tokens = tokens[: vocabulary_size - n_symbols]
    if total:
        kept = sum(counts[t] for t in tokens)
        log.info("OOV rate = %.2f %%", 100 * (total - kept) / total)
    else:
        log.warning("create_token_list: manifest contained no tokens.")
    return tokens


def _trained_pieces(
    manifest: Path, save_dir: Path, clean: Any, options: dict[str, Any] | None
) -> list[str]:
    text = save_dir / "bpe_train.txt"
    with atomic_open(text) as f:
        f.writelines(f"{clean(t)}\n" for t in transcripts(manifest))
    model = train_sentencepiece(text, save_dir, **(options or {}))
    log.info("create_token_list: trained %s on %s", model, manifest)
    return sentencepiece_token_list(model)


def _symbol(entry: str) -> tuple[str, int]:
    """``"<blank>:0"`` as ``("<blank>", 0)``."""
    try:
        symbol, index = str(entry).split(":")
        return symbol.strip(), int(index)
    except ValueError:
        raise SetupError(f"Format error: e.g. '<blank>:0': {entry}") from None


def _write(output: Path, tokens: Sequence[str]) -> None:
    atomic_write_text(output, "".join(f"{token}\n" for token in tokens))
