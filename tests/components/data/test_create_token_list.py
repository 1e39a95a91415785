"""create_token_list on real AN4 transcripts: char, word and sentencepiece token lists."""

from __future__ import annotations

import collections

import pytest
import sentencepiece as spm

from espnet3.components.data.create_token_list import create_token_list, transcripts
from espnet3.errors import ConfigError, SetupError

SYMBOLS = ["<blank>:0", "<unk>:1", "<sos/eos>:-1"]


def run(tmp_path, manifest, **section):
    section = {
        "save_path": str(tmp_path / "tokens"),
        "filename": "tokens.txt",
        "manifest_path": str(manifest),
        "add_symbol": SYMBOLS,
        **section,
    }
    create_token_list({"create_token_list": section})
    return (tmp_path / "tokens" / "tokens.txt").read_text().splitlines()


def test_char_tokens_by_count_with_the_symbols_around(an4_tsv, tmp_path):
    tokens = run(tmp_path, an4_tsv)
    texts = list(transcripts(an4_tsv))
    counts = collections.Counter(c if c != " " else "<space>" for t in texts for c in t)
    assert tokens[:2] == ["<blank>", "<unk>"] and tokens[-1] == "<sos/eos>"
    assert sorted(tokens[2:-1]) == sorted(counts)
    assert [counts[t] for t in tokens[2:-1]] == sorted(counts.values(), reverse=True)


def test_word_tokens_cutoff_and_vocabulary_size(an4_tsv, tmp_path):
    words = collections.Counter(w for t in transcripts(an4_tsv) for w in t.split())
    tokens = run(tmp_path, an4_tsv, token_type="word", cutoff=1)
    assert tokens[2:-1] == [w for w, n in words.most_common() if n > 1]
    small = run(tmp_path, an4_tsv, token_type="word", vocabulary_size=5)
    assert len(small) == 5 + 0 and small[2:4] == [w for w, _ in words.most_common(2)]
    with pytest.raises(SetupError, match="vocabulary_size is too small: 2"):
        run(tmp_path, an4_tsv, token_type="word", vocabulary_size=2)


def test_bpe_trains_sentencepiece_and_lists_its_pieces_as_asr_sh_does(an4_tsv, tmp_path):
    """ESPnet2's asr.sh: spm_train with nbpe/bpemode/char coverage/input sentence size, then
    <blank>, <unk>, the .vocab pieces after its first three, <sos/eos>."""
    tokens = run(tmp_path, an4_tsv, token_type="bpe", bpe={"vocab_size": 30})
    model = tmp_path / "tokens" / "bpe.model"
    assert model.is_file() and model.with_suffix(".vocab").is_file()
    # The same training, as asr.sh runs it, on the same text, in a directory of its own.
    (tmp_path / "ref").mkdir()
    text = tmp_path / "ref" / "train.txt"
    text.write_text("".join(f"{t}\n" for t in transcripts(an4_tsv)))
    spm.SentencePieceTrainer.train(
        input=str(text),
        vocab_size=30,
        model_type="unigram",
        model_prefix=str(tmp_path / "ref" / "bpe"),
        character_coverage=1.0,
        input_sentence_size=100000000,
    )
    vocab = (tmp_path / "ref" / "bpe.vocab").read_text().splitlines()
    assert tokens == ["<blank>", "<unk>", *[line.split("\t")[0] for line in vocab[3:]], "<sos/eos>"]
    processor = spm.SentencePieceProcessor(model_file=str(model))
    for text in transcripts(an4_tsv):  # every piece of the corpus has an id
        assert set(processor.encode_as_pieces(text)) <= set(tokens)


def test_bpe_with_a_trained_model_counts_its_pieces(an4_tsv, tmp_path):
    run(tmp_path, an4_tsv, token_type="bpe", bpe={"vocab_size": 30, "model_type": "bpe"})
    model = tmp_path / "tokens" / "bpe.model"
    tokens = run(tmp_path / "again", an4_tsv, token_type="bpe", bpemodel=str(model))
    processor = spm.SentencePieceProcessor(model_file=str(model))
    pieces = collections.Counter(
        p for t in transcripts(an4_tsv) for p in processor.encode_as_pieces(t)
    )
    assert [pieces[t] for t in tokens[2:-1]] == sorted(pieces.values(), reverse=True)


def test_what_cannot_work_is_refused_naming_it(an4_tsv, tmp_path):
    with pytest.raises(RuntimeError, match="create_token_list must be set"):
        create_token_list({})
    with pytest.raises(RuntimeError, match="Manifest file not found.*missing.tsv"):
        run(tmp_path, tmp_path / "missing.tsv")
    with pytest.raises(RuntimeError, match="Format error: e.g. '<blank>:0': <blank>"):
        run(tmp_path, an4_tsv, add_symbol=["<blank>"])
    with pytest.raises(ConfigError, match="sentencepiece cannot train on .*bpe_train.txt"):
        run(tmp_path, an4_tsv, token_type="bpe", bpe={"vocab_size": 5000})
    with pytest.raises(ConfigError, match="bpemodel '/nope.model' does not exist"):
        run(tmp_path, an4_tsv, token_type="bpe", bpemodel="/nope.model")
