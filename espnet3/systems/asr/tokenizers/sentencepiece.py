"""Sentencepiece for ASR recipes: training text from Kaldi ``text`` files, the model and its
ESPnet token list, and special tokens added to a trained model.

Example::

    prepare_sentences(["dump/train/text"], "exp/tokenizer")        # exp/tokenizer/train.txt
    train_sentencepiece("exp/tokenizer/train.txt", "exp/tokenizer", vocab_size=300)
    # exp/tokenizer/bpe.model, bpe.vocab and tokens.txt (<blank> <unk> ... <sos/eos>)
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from espnet3.components.data.tokenizers import (
    sentencepiece_token_list,
)
from espnet3.components.data.tokenizers import (
    train_sentencepiece as _train_model,
)
from espnet3.errors import ConfigError, SetupError
from espnet3.utils.atomic import atomic_write_bytes, atomic_write_text

#: sentencepiece's piece type for symbols that are never split (ModelProto.SentencePiece.Type)
_USER_DEFINED = 4


def prepare_sentences(
    dump_text_paths: str | os.PathLike | Sequence[str | os.PathLike],
    output_path: str | os.PathLike,
    remove_characters: str = "",
) -> Path:
    """``<output_path>/train.txt``: the text after the utterance id of every line of the Kaldi
    ``text`` files, in order, without the characters of ``remove_characters``."""
    if isinstance(dump_text_paths, (str, os.PathLike)):
        dump_text_paths = [dump_text_paths]
    table = str.maketrans("", "", remove_characters)
    sentences = []
    for path in dump_text_paths:
        for number, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
            _, space, text = line.translate(table).partition(" ")
            if not space:
                raise ConfigError(f"{path} line {number} is not '<utt_id> <text>': {line[:80]!r}")
            sentences.append(text)
    target = Path(output_path) / "train.txt"
    target.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(target, "\n".join(sentences))
    return target


def train_sentencepiece(
    dump_text_path: str | os.PathLike,
    save_path: str | os.PathLike,
    vocab_size: int = 5000,
    character_coverage: float = 1.0,
    model_type: str = "bpe",
    user_defined_symbols: Iterable[str] = (),
) -> Path:
    """Train ``<save_path>/<model_type>.model`` (and ``.vocab``) on ``dump_text_path`` and write
    ``<save_path>/tokens.txt``: ``<blank>``, ``<unk>``, the pieces, ``<sos/eos>``, as ESPnet2's
    asr.sh lists them. Returns the model's path."""
    model = _train_model(
        dump_text_path,
        save_path,
        prefix=model_type,
        model_type=model_type,
        vocab_size=vocab_size,
        character_coverage=character_coverage,
        user_defined_symbols=list(user_defined_symbols),
    )
    tokens = ["<blank>", "<unk>", *sentencepiece_token_list(model), "<sos/eos>"]
    atomic_write_text(Path(save_path) / "tokens.txt", "".join(f"{t}\n" for t in tokens))
    return model


def add_special_tokens(
    tokenizer: Any,
    converter: Any,
    embedding: Any,
    special_tokens: Sequence[str],
    insert_after: str | None = None,
) -> tuple[Any, Any, Any]:
    """A tokenizer, token-id converter and embedding that also know ``special_tokens``.

    The tokens not yet listed go right after ``insert_after`` in the token list (at its end
    when that is ``None`` or absent); the embedding keeps every existing row, moved with its
    token, and gains fresh rows for the new ones. The sentencepiece model is written beside
    the old one as ``<stem>_sp.model`` with the tokens as unsplittable pieces. ``tokenizer``
    and ``converter`` are ESPnet2's ``SentencepiecesTokenizer`` and ``TokenIDConverter``.
    """
    import torch

    try:
        from sentencepiece import sentencepiece_model_pb2
    except ImportError as err:  # the model file is a protobuf message
        raise SetupError(
            f"add_special_tokens edits the sentencepiece model, which needs protobuf ({err}): "
            "pip install protobuf"
        ) from None
    tokens = list(converter.token_list)
    added = [t for t in dict.fromkeys(special_tokens) if t not in tokens]
    at = tokens.index(insert_after) + 1 if insert_after in tokens else len(tokens)
    new_converter = type(converter)(tokens[:at] + added + tokens[at:], converter.unk_symbol)

    new_embedding = torch.nn.Embedding(len(tokens) + len(added), embedding.embedding_dim)
    with torch.no_grad():
        new_embedding.weight[:at] = embedding.weight[:at]
        new_embedding.weight[at + len(added) :] = embedding.weight[at:]

    proto = sentencepiece_model_pb2.ModelProto()
    proto.ParseFromString(Path(tokenizer.model).read_bytes())
    for token in added:
        proto.pieces.add(piece=token, score=0.0, type=_USER_DEFINED)
    new_model = Path(tokenizer.model).with_name(f"{Path(tokenizer.model).stem}_sp.model")
    atomic_write_bytes(new_model, proto.SerializeToString())
    new_tokenizer = type(tokenizer)(new_model, encode_kwargs=tokenizer.encode_kwargs)
    return new_tokenizer, new_converter, new_embedding
