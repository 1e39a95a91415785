"""ESPnet2's own modules on espnet3's datasets: collate, preprocessors, iterators, shape files.

Runs where ESPnet2 and torchaudio are installed (``nox -s espnet2`` builds that environment);
everything here is real: WAV files, ESPnet2's classes, espnet3's organizer and loaders.
"""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
import torch

from espnet3.components.data.collate import CommonCollateFn as OurCollate
from espnet3.components.data.collect_stats import collect_stats
from espnet3.components.data.data_organizer import DataOrganizer
from espnet3.components.data.dataloader import DataLoaderBuilder
from espnet3.components.data.preprocessor import takes_uid

pytestmark = pytest.mark.espnet2

TOKENS = ["<blank>", "<unk>", "a", "b", "c", "<space>", "<sos/eos>"]
TEXTS = ["ab c", "ca", "b", "cab a"]


class WavText:
    """A recipe-style dataset: WAV files on disk, ``uids()`` and ``{"speech", "text"}`` items."""

    def __init__(self, folder: str):
        from pathlib import Path

        self.paths = sorted(Path(folder).glob("*.wav"))

    def __len__(self):
        return len(self.paths)

    def __getitem__(self, i):
        speech, _ = sf.read(self.paths[i], dtype="float32")
        return {"speech": speech, "text": TEXTS[i]}

    def uids(self):
        return [p.stem for p in self.paths]


@pytest.fixture
def wav_dir(tmp_path):
    for i in range(len(TEXTS)):
        t = np.arange(400 * (i + 2)) / 16000
        sf.write(tmp_path / f"spk-utt{i}.wav", (0.2 * np.sin(900 * t)).astype(np.float32), 16000)
    return tmp_path


def organizer(wav_dir, preprocessor):
    entry = [{"dataset": {"_target_": f"{__name__}.WavText", "folder": str(wav_dir)}}]
    return DataOrganizer(train=entry, valid=entry, preprocessor=preprocessor)


def test_espnet2_common_preprocessor_and_collate_on_organizer_output(wav_dir):
    from espnet2.train.collate_fn import CommonCollateFn
    from espnet2.train.preprocessor import CommonPreprocessor

    pre = CommonPreprocessor(train=True, token_type="char", token_list=TOKENS, text_name="text")
    assert takes_uid(pre)  # an ESPnet2 AbsPreprocessor is called as (uid, sample)
    org = organizer(wav_dir, pre)
    org.train.use_espnet_collator = True
    uid, sample = org.train[0]
    assert uid == "spk-utt0" and sample["text"].tolist() == [2, 3, 5, 4]  # a b <space> c
    loader = DataLoaderBuilder(
        org.train,
        {"dataloader": {"train": {"batch_size": 3}}},
        collate_fn=CommonCollateFn(int_pad_value=-1),
    ).build("train")
    (uids, batch), (rest, _) = list(loader)
    assert uids == ["spk-utt0", "spk-utt1", "spk-utt2"] and rest == ["spk-utt3"]
    assert batch["speech_lengths"].tolist() == [800, 1200, 1600]
    assert batch["text"].tolist() == [[2, 3, 5, 4], [4, 2, -1, -1], [3, -1, -1, -1]]
    # espnet3's CommonCollateFn pads the same way.
    ours = OurCollate(int_pad_value=-1)([org.train[i] for i in range(3)])
    for key in batch:
        assert torch.equal(ours[1][key], batch[key]), key


def test_espnet2_abs_preprocessor_subclass_gets_the_utterance_id(wav_dir):
    from espnet2.train.preprocessor import AbsPreprocessor

    seen = []

    class Tagging(AbsPreprocessor):
        def __init__(self):
            super().__init__(train=False)

        def __call__(self, uid, data):
            seen.append(uid)
            return {**data, "n": np.array(len(data["speech"]))}

    org = organizer(wav_dir, Tagging())
    assert int(org.valid[3]["n"]) == 2000 and seen == ["spk-utt3"]


def test_shape_files_from_collect_stats_feed_espnet2_iterators(wav_dir, tmp_path):
    """collect_stats writes ESPnet2 shape files; ESPnet2's sampler and iterator read them."""
    entry = [{"dataset": {"_target_": f"{__name__}.WavText", "folder": str(wav_dir)}}]
    preprocessor = {
        "_target_": "espnet2.train.preprocessor.CommonPreprocessor",
        "train": False,
        "token_type": "char",
        "token_list": TOKENS,
    }
    dataset = {"train": entry, "valid": entry, "preprocessor": preprocessor}
    collect_stats({"_target_": f"{__name__}.Identity"}, dataset, {}, "train", tmp_path / "stats")
    shapes = tmp_path / "stats" / "train"
    assert (shapes / "speech_shape").read_text().splitlines()[0] == "spk-utt0 800"
    assert (shapes / "text_shape").read_text().splitlines()[3] == "spk-utt3 5"  # c a b _ a
    factory = {
        "_target_": "espnet2.iterators.sequence_iter_factory.SequenceIterFactory",
        "collate_fn": {"_target_": "espnet2.train.collate_fn.CommonCollateFn"},
        "batches": {
            "type": "unsorted",
            "shape_files": [str(shapes / "speech_shape")],
            "batch_size": 2,
            "batch_bins": 0,
        },
    }
    org = DataOrganizer.from_config(dataset)
    org.train.use_espnet_collator = True
    loader = DataLoaderBuilder(org.train, {"dataloader": {"train": {"iter_factory": factory}}})
    batches = list(loader.build("train"))
    assert [uids for uids, _ in batches] == [["spk-utt0", "spk-utt1"], ["spk-utt2", "spk-utt3"]]
    assert batches[1][1]["speech_lengths"].tolist() == [1600, 2000]
    assert batches[1][1]["text_lengths"].tolist() == [1, 5]


class Identity(torch.nn.Module):
    """``collect_feats`` returning the padded speech itself."""

    def collect_feats(self, speech, speech_lengths, text, text_lengths):
        return {
            "speech": speech,
            "speech_lengths": speech_lengths,
            "text": text,
            "text_lengths": text_lengths,
        }


@pytest.mark.parametrize(
    "options",
    [
        {"token_type": "char"},
        {"token_type": "char", "cutoff": 1, "vocabulary_size": 12},
        {"token_type": "word"},
        {"token_type": "word", "non_linguistic_symbols": ["FIFTY"],
         "remove_non_linguistic_symbols": True},
        {"token_type": "bpe"},
    ],
)  # fmt: skip
def test_create_token_list_writes_the_list_espnet2_tokenize_text_writes(
    an4_utterances, tmp_path, options
):
    """ESPnet2's own tokenize_text --write_vocabulary (asr.sh's char/word token list) on the
    text file of the same utterances; bpe with a model espnet3 trained (asr.sh trains it)."""
    from espnet2.bin.tokenize_text import tokenize

    from espnet3.components.data.create_token_list import create_token_list

    manifest = tmp_path / "train.tsv"
    manifest.write_text(
        "".join(f"{u['utt_id']}\t{u['path']}\t{u['text']}\n" for u in an4_utterances)
    )
    text = tmp_path / "text"
    text.write_text("".join(f"{u['utt_id']} {u['text']}\n" for u in an4_utterances))
    symbols = ["<blank>:0", "<unk>:1", "<sos/eos>:-1"]
    section = {
        "save_path": str(tmp_path / "ours"),
        "filename": "tokens.txt",
        "manifest_path": str(manifest),
        "add_symbol": symbols,
        **options,
    }
    if (
        options["token_type"] == "bpe"
    ):  # a model first (asr.sh's spm_train), then its pieces counted
        create_token_list({"create_token_list": {**section, "filename": "trained.txt"}})
        section["bpemodel"] = str(tmp_path / "ours" / "bpe.model")
    create_token_list({"create_token_list": section})
    nls = options.get("non_linguistic_symbols")
    if nls:
        (tmp_path / "nls").write_text("\n".join(nls) + "\n")
    tokenize(
        input=str(text),
        output=str(tmp_path / "espnet2.txt"),
        field="2-",
        delimiter=None,
        token_type=options["token_type"],
        space_symbol="<space>",
        non_linguistic_symbols=str(tmp_path / "nls") if nls else None,
        bpemodel=section.get("bpemodel"),
        log_level="ERROR",
        write_vocabulary=True,
        vocabulary_size=options.get("vocabulary_size", 0),
        remove_non_linguistic_symbols=options.get("remove_non_linguistic_symbols", False),
        cutoff=options.get("cutoff", 0),
        add_symbol=symbols,
        cleaner=None,
        g2p=None,
        add_nonsplit_symbol=[],
    )
    ours = (tmp_path / "ours" / "tokens.txt").read_text().splitlines()
    assert ours == (tmp_path / "espnet2.txt").read_text().splitlines()


def test_asr_tokenizer_lists_espnet2_tokens_and_takes_special_tokens(an4_utterances, tmp_path):
    """prepare_sentences + train_sentencepiece on AN4 transcripts, read back by ESPnet2's own
    tokenizer and converter; add_special_tokens makes the new tokens single, known pieces and
    keeps every embedding row with its token."""
    from espnet2.text.sentencepiece_tokenizer import SentencepiecesTokenizer
    from espnet2.text.token_id_converter import TokenIDConverter

    from espnet3.systems.asr.tokenizers.sentencepiece import (
        add_special_tokens,
        prepare_sentences,
        train_sentencepiece,
    )

    text = tmp_path / "text"
    text.write_text("".join(f"{u['utt_id']} {u['text']}\n" for u in an4_utterances))
    train = prepare_sentences([text], tmp_path / "spm")
    assert train.read_text().splitlines() == [u["text"] for u in an4_utterances]
    model = train_sentencepiece(train, tmp_path / "spm", vocab_size=40, model_type="bpe")
    tokens = (tmp_path / "spm" / "tokens.txt").read_text().splitlines()
    assert tokens[:2] == ["<blank>", "<unk>"] and tokens[-1] == "<sos/eos>" and len(tokens) == 40

    tokenizer, converter = SentencepiecesTokenizer(model), TokenIDConverter(tokens, "<unk>")
    embedding = torch.nn.Embedding(len(tokens), 3)
    new_tok, new_conv, new_emb = add_special_tokens(
        tokenizer, converter, embedding, ["<intent>", "<unk>"], insert_after="<unk>"
    )
    assert new_conv.token_list[:3] == ["<blank>", "<unk>", "<intent>"]
    pieces = new_tok.text2tokens("<intent> " + an4_utterances[0]["text"])
    assert "<intent>" in pieces and "<unk>" not in new_conv.ids2tokens(new_conv.tokens2ids(pieces))
    assert torch.equal(new_emb.weight[:2], embedding.weight[:2])
    assert torch.equal(new_emb.weight[3:], embedding.weight[2:])
