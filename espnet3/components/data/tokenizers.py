"""Text to tokens, as ESPnet2's tokenizers split it: characters, words, sentencepiece pieces.

``char``, ``word`` and ``bpe`` are implemented here (no ESPnet2 needed), token for token as
ESPnet2's ``CharTokenizer``, ``WordTokenizer`` and ``SentencepiecesTokenizer`` split a line;
other types (``phn`` with a ``g2p``, ...) and text cleaners come from ESPnet2 itself when it is
installed. :func:`train_sentencepiece` trains a model with the arguments ESPnet2's ``asr.sh``
gives ``spm_train``, and :func:`sentencepiece_token_list` is the token list ``asr.sh`` writes
from it.

Example:
    >>> build_tokenizer("char")("a b")
    ['a', '<space>', 'b']
    >>> build_tokenizer("char", non_linguistic_symbols=["<noise>"])("<noise>ab")
    ['<noise>', 'a', 'b']
    >>> build_tokenizer("word")("hello  world")
    ['hello', 'world']
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from espnet3.errors import ConfigError, SetupError

Tokenizer = Callable[[str], list[str]]
#: What ESPnet2's asr.sh passes to spm_train unless the recipe says otherwise.
SENTENCEPIECE_DEFAULTS = {
    "vocab_size": 30,
    "model_type": "unigram",
    "character_coverage": 1.0,
    "input_sentence_size": 100000000,
}


def build_tokenizer(
    token_type: str,
    *,
    bpemodel: str | os.PathLike | None = None,
    non_linguistic_symbols: str | os.PathLike | Iterable[str] | None = None,
    space_symbol: str = "<space>",
    delimiter: str | None = None,
    remove_non_linguistic_symbols: bool = False,
    nonsplit_symbols: Iterable[str] = (),
    g2p_type: str | None = None,
) -> Tokenizer:
    """A function ``text -> tokens`` for ``token_type`` (``char``, ``word``, ``bpe``; others
    through ESPnet2's ``build_tokenizer``)."""
    symbols = _symbols(non_linguistic_symbols)
    nonsplit = list(nonsplit_symbols)
    if token_type == "char":
        return _char(symbols, nonsplit, space_symbol, remove_non_linguistic_symbols)
    if token_type == "word":
        return _word(symbols, delimiter, remove_non_linguistic_symbols)
    if token_type == "bpe":
        if bpemodel is None:
            raise ConfigError("token_type bpe needs a sentencepiece model: set bpemodel")
        return _pieces(bpemodel)
    return _from_espnet2(
        token_type,
        bpemodel=bpemodel,
        non_linguistic_symbols=non_linguistic_symbols,
        space_symbol=space_symbol,
        delimiter=delimiter,
        remove_non_linguistic_symbols=remove_non_linguistic_symbols,
        g2p_type=g2p_type,
        nonsplit_symbol=nonsplit or None,
    )


def text_cleaner(cleaner: str | Sequence[str] | None) -> Callable[[str], str]:
    """ESPnet2's ``TextCleaner(cleaner)``; the identity without a cleaner.

    Example:
        >>> text_cleaner(None)("As Is")
        'As Is'
    """
    if not cleaner:
        return lambda text: text
    try:
        from espnet2.text.cleaner import TextCleaner
    except ImportError as err:
        raise SetupError(
            f"text cleaner {cleaner!r} comes from ESPnet2, which cannot be imported here ({err}): "
            "install espnet (and espnet_tts_frontend for tacotron), or set cleaner: null"
        ) from None
    return TextCleaner(cleaner)


def train_sentencepiece(
    text_path: str | os.PathLike, save_dir: str | os.PathLike, prefix: str = "bpe", **options: Any
) -> Path:
    """Train a sentencepiece model on the lines of ``text_path``; ``<save_dir>/<prefix>.model``.

    ``options`` are sentencepiece trainer arguments over :data:`SENTENCEPIECE_DEFAULTS`
    (``vocab_size``, ``model_type``, ``character_coverage``, ``input_sentence_size``,
    ``user_defined_symbols`` ...). The ``.model`` and ``.vocab`` appear together, whole.
    """
    import sentencepiece as spm

    save_dir = Path(save_dir)
    save_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=save_dir, prefix=".bpe-") as tmp:
        arguments = {**SENTENCEPIECE_DEFAULTS, "minloglevel": 2, **options}
        if arguments.get("user_defined_symbols") in ([], None, ""):
            arguments.pop("user_defined_symbols", None)
        try:
            spm.SentencePieceTrainer.train(
                input=str(text_path), model_prefix=f"{tmp}/{prefix}", **arguments
            )
        except RuntimeError as err:  # e.g. a vocab_size the text cannot reach
            raise ConfigError(f"sentencepiece cannot train on {text_path}: {err}") from None
        for suffix in (".vocab", ".model"):  # the model last: its presence means both are whole
            shutil.move(f"{tmp}/{prefix}{suffix}", save_dir / f"{prefix}{suffix}")
    return save_dir / f"{prefix}.model"


def sentencepiece_token_list(model_path: str | os.PathLike) -> list[str]:
    """The model's pieces without ``<unk>``, ``<s>`` and ``</s>`` (its first three), in its
    vocabulary order: what ESPnet2's asr.sh puts between ``<blank> <unk>`` and ``<sos/eos>``."""
    vocab = Path(model_path).with_suffix(".vocab")
    lines = vocab.read_text(encoding="utf-8").splitlines()
    return [line.split("\t")[0] for line in lines[3:]]


def _symbols(value: str | os.PathLike | Iterable[str] | None) -> list[str]:
    """Non-linguistic symbols from a file (one per line) or a list, longest first."""
    if value is None:
        return []
    if isinstance(value, (str, os.PathLike)):
        try:
            lines = Path(value).read_text(encoding="utf-8").splitlines()
        except OSError as err:
            raise ConfigError(f"non_linguistic_symbols file {str(value)!r}: {err}") from None
        value = [line.rstrip() for line in lines]
    return sorted({s for s in value if s}, key=len, reverse=True)


def _char(symbols: list[str], nonsplit: list[str], space: str, remove: bool) -> Tokenizer:
    specials = sorted(set(symbols) | set(nonsplit), key=len, reverse=True)

    def tokens(line: str) -> list[str]:
        out = []
        while line:
            special = next((w for w in specials if line.startswith(w)), None)
            if special is not None:
                if not remove or special in nonsplit:
                    out.append(special)
                line = line[len(special) :]
                continue
            out.append(space if line[0] == " " else line[0])
            line = line[1:]
        return out

    return tokens


def _word(symbols: list[str], delimiter: str | None, remove: bool) -> Tokenizer:
    dropped = set(symbols) if remove else set()

    def tokens(line: str) -> list[str]:
        return [t for t in line.split(delimiter) if t not in dropped]

    return tokens


def _pieces(model: str | os.PathLike) -> Tokenizer:
    import sentencepiece as spm

    if not Path(model).is_file():
        raise ConfigError(
            f"bpemodel {str(model)!r} does not exist: train it first, or fix the path"
        )
    processor = spm.SentencePieceProcessor()
    processor.load(str(model))
    return processor.encode_as_pieces


def _from_espnet2(token_type: str, **kwargs: Any) -> Tokenizer:
    try:
        from espnet2.text.build_tokenizer import build_tokenizer as espnet2_tokenizer
    except ImportError as err:
        raise SetupError(
            f"token_type {token_type!r} comes from ESPnet2, which cannot be imported here "
            f"({err}): install espnet, or use token_type char, word or bpe"
        ) from None
    return espnet2_tokenizer(token_type=token_type, **kwargs).text2tokens
