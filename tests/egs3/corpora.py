"""Small corpora, made of real speech, in the layouts upstream ESPnet3's recipes read.

Each function below writes one corpus the way its distribution lays it out (file names,
folders, metadata formats, sample rates), small enough that a recipe's data stages run in
seconds. The audio is real: the mini AN4 archive's recordings (7 transcribed utterances of 16
kHz NIST SPHERE speech by 5 speakers, plus its noise and room impulse response recordings),
resampled and re-encoded to the rate and format each corpus uses. A corpus that needs more
clips than AN4 has reuses its utterances under other names. Nothing is downloaded.

Every builder has the signature ``(recipe, corpus, speech) -> environment``: ``recipe`` is the
recipe directory (some corpora live inside it, as the recipe would download them there),
``corpus`` an empty directory of its own, and the result the environment variables that point
the recipe at it.

Example::

    speech = load_mini_an4(Path("downloads.tar.gz"), Path("/tmp/an4"))
    env = esc50(Path("egs3/esc50/cls"), Path("/tmp/esc50"), speech)   # {"ESC50": "/tmp/esc50"}
"""

from __future__ import annotations

import io
import json
import os
import shutil
import tarfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from espnet3.data.sphere import read_sphere

AN4_RATE = 16000
#: The language folders of VoxLingua107 (ISO 639-1 codes, as the corpus names them).
VOXLINGUA107_LANGUAGES = (
    "ab af am ar as az ba be bg bn bo br bs ca ceb cs cy da de el en eo es et eu fa fi fo fr gl "
    "gn gu gv ha haw hi hr ht hu hy ia id is it iw ja jw ka kk km kn ko la lb ln lo lt lv mg mi "
    "mk ml mn mr ms mt my ne nl nn no oc pa pl ps pt ro ru sa sco sd si sk sl sn so sq sr su sv "
    "sw ta te tg th tk tl tr tt uk ur uz vi war yi yo zh"
).split()


@dataclass(frozen=True)
class Utterance:
    """One transcribed AN4 recording."""

    utt_id: str  # as AN4 names it: an251-fash-b
    speaker: str  # fash
    text: str  # YES
    split: str  # train or test, as AN4 splits it
    sphere: Path  # the SPHERE file, extracted from the archive
    audio: np.ndarray  # float32 samples in [-1, 1] at 16 kHz


@dataclass(frozen=True)
class Speech:
    """What the mini AN4 archive holds, read once for every corpus."""

    archive: Path
    utterances: tuple[Utterance, ...]
    noises: tuple[np.ndarray, ...]  # 16 kHz noise recordings
    rirs: tuple[np.ndarray, ...]  # 16 kHz room impulse responses
    pronunciations: dict[str, list[str]]  # word -> CMU phones (AN4's dictionary)

    def phones(self, text: str) -> list[str]:
        """The lower-case CMU phones of ``text``, word by word."""
        return [p.lower() for word in text.split() for p in self.pronunciations[word]]


def load_mini_an4(archive: Path, scratch: Path) -> Speech:
    """Extract the mini AN4 archive into ``scratch`` and read its recordings."""
    with tarfile.open(archive) as tar:
        tar.extractall(scratch, filter="data")
    an4 = scratch / "downloads" / "an4"
    utterances = []
    for split, name in (("train", "an4_train"), ("test", "an4_test")):
        for line in (an4 / "etc" / f"{name}.transcription").read_text().splitlines():
            words, _, utt_id = line.rstrip(")").rpartition(" (")
            text = words.removeprefix("<s> ").removesuffix(" </s>").strip()
            speaker = utt_id.split("-")[1]
            clstk = "an4_clstk" if split == "train" else "an4test_clstk"
            sphere = an4 / "wav" / clstk / speaker / f"{utt_id}.sph"
            samples, _ = read_sphere(sphere)
            audio = samples.astype(np.float32) / 32768
            utterances.append(Utterance(utt_id, speaker, text, split, sphere, audio))
    pronunciations = {}
    for line in (an4 / "etc" / "an4.dic").read_text().splitlines():
        word, *phones = line.split()
        pronunciations.setdefault(word, phones)  # the first of alternatives like WORD(2)
    return Speech(
        archive=archive,
        utterances=tuple(utterances),
        noises=tuple(_read(p) for p in sorted((scratch / "downloads" / "noise").glob("*.wav"))),
        rirs=tuple(_read(p) for p in sorted((scratch / "downloads" / "rirs").glob("*.wav"))),
        pronunciations=pronunciations,
    )


def _read(path: Path) -> np.ndarray:
    audio, rate = sf.read(path, dtype="float32")
    if rate != AN4_RATE:
        raise ValueError(f"{path}: {rate} Hz, not AN4's {AN4_RATE}")
    return audio


def resample(audio: np.ndarray, rate: int) -> np.ndarray:
    """16 kHz ``audio`` at ``rate``, by linear interpolation (test audio whose recipes
    convert it again; no filter needed)."""
    if rate == AN4_RATE:
        return audio
    times = np.arange(round(len(audio) * rate / AN4_RATE)) * (AN4_RATE / rate)
    return np.interp(times, np.arange(len(audio)), audio).astype(np.float32)


def write_audio(path: Path, audio: np.ndarray, rate: int = AN4_RATE) -> Path:
    """Write 16 kHz ``audio`` as 16-bit PCM at ``rate``, in the format of the file suffix."""
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, np.clip(resample(audio, rate), -1, 1), rate, subtype="PCM_16")
    return path


def recordings(folder: Path, speech: Speech, rate: int = AN4_RATE) -> list[Path]:
    """Every AN4 utterance written once as a WAV in ``folder``, for corpora that hard-link
    many clips to a few recordings."""
    return [write_audio(folder / f"{u.utt_id}.wav", u.audio, rate) for u in speech.utterances]


def mini_an4(recipe: Path, corpus: Path, speech: Speech) -> dict[str, str]:
    """``<recipe>/downloads.tar.gz``: the real archive, which the recipe extracts (and
    converts with ``sph2pipe``) itself."""
    shutil.copyfile(speech.archive, recipe / "downloads.tar.gz")
    return {}


def voxceleb(recipe: Path, corpus: Path, speech: Speech) -> dict[str, str]:
    """VoxCeleb 1 and 2 as 16 kHz WAV (``voxceleb1/{dev,test}``, ``voxceleb2/dev``, each
    ``<speaker id>/<video id>/<nnnnn>.wav``), the Vox1-O trial list the recipe would download
    (``<recipe>/download/veri_test2.txt``), and MUSAN and RIRS_NOISES from AN4's noise and
    impulse responses."""
    parts = {"fash": "voxceleb1/dev", "fbbh": "voxceleb1/dev", "mwhw": "voxceleb2/dev"}
    parts.update(fcaw="voxceleb1/test", mmxg="voxceleb1/test")
    ids = {"fash": "id10001", "fbbh": "id10002", "mwhw": "id00012"}
    ids.update(fcaw="id10270", mmxg="id10271")
    root = corpus / "voxceleb"
    for n, utt in enumerate(speech.utterances):
        speaker = root / parts[utt.speaker] / ids[utt.speaker]
        write_audio(speaker / "an4video1" / f"{n + 1:05d}.wav", utt.audio)
        if utt.split == "test":  # a second video of each test speaker: trials need pairs
            write_audio(speaker / "an4video2" / f"{n + 1:05d}.wav", utt.audio)
    fcaw, mmxg = (f"{n + 1:05d}" for n, u in enumerate(speech.utterances) if u.split == "test")
    trials = [
        f"1 id10270/an4video1/{fcaw}.wav id10270/an4video2/{fcaw}.wav",
        f"0 id10270/an4video1/{fcaw}.wav id10271/an4video1/{mmxg}.wav",
        f"1 id10271/an4video1/{mmxg}.wav id10271/an4video2/{mmxg}.wav",
    ]
    (recipe / "download").mkdir()
    (recipe / "download" / "veri_test2.txt").write_text("\n".join(trials) + "\n")
    musan, rirs = corpus / "musan", corpus / "RIRS_NOISES"
    write_audio(
        musan / "speech" / "librivox" / "speech-librivox-0000.wav", speech.utterances[0].audio
    )
    for n, noise in enumerate(speech.noises):
        write_audio(musan / "noise" / "free-sound" / f"noise-free-sound-{n:04d}.wav", noise)
        write_audio(musan / "music" / "fma" / f"music-fma-{n:04d}.wav", noise)
    for n, rir in enumerate(speech.rirs):
        room = ("smallroom", "mediumroom")[n % 2]
        write_audio(rirs / "simulated_rirs" / room / "Room001" / f"Room001-{n:05d}.wav", rir)
    return {"VOXCELEB": str(root), "MUSAN": str(musan), "RIRS_NOISES": str(rirs)}


def vctk_demand(recipe: Path, corpus: Path, speech: Speech) -> dict[str, str]:
    """VCTK-DEMAND's four 16 kHz WAV folders (``{clean,noisy}_trainset_28spk_wav``,
    ``{clean,noisy}_testset_wav``, files ``p<speaker>_<nnn>.wav``); noisy is clean plus AN4's
    noise at 5 dB SNR. p226 is one of the recipe's validation speakers."""
    names = ["p226_001", "p226_002", "p230_001", "p230_002", "p232_001", "p232_002", "p257_001"]
    for n, (name, utt) in enumerate(zip(names, speech.utterances, strict=True)):
        part = "testset" if name.startswith(("p232", "p257")) else "trainset_28spk"
        noise = np.resize(speech.noises[n % len(speech.noises)], len(utt.audio))
        gain = np.sqrt(np.mean(utt.audio**2) / np.mean(noise**2) / 10 ** (5 / 10))
        write_audio(corpus / f"clean_{part}_wav" / f"{name}.wav", utt.audio)
        write_audio(corpus / f"noisy_{part}_wav" / f"{name}.wav", utt.audio + gain * noise)
    return {}


def esc50(recipe: Path, corpus: Path, speech: Speech) -> dict[str, str]:
    """ESC-50: ``meta/esc50.csv`` (``filename,fold,target,category,esc10,src_file,take``) and
    ``audio/<fold>-<src>-<take>-<target>.wav`` clips at the corpus' 44.1 kHz, over folds 1-4."""
    categories = [(20, "crying_baby"), (24, "coughing"), (26, "laughing"), (23, "breathing")]
    rows = ["filename,fold,target,category,esc10,src_file,take"]
    for n, utt in enumerate(speech.utterances):
        target, category = categories[n % len(categories)]
        fold, source = n % 4 + 1, 100032 + n
        name = f"{fold}-{source}-A-{target}.wav"
        write_audio(corpus / "audio" / name, utt.audio, 44100)
        rows.append(f"{name},{fold},{target},{category},{target == 20},{source},A")
    (corpus / "meta").mkdir()
    (corpus / "meta" / "esc50.csv").write_text("\n".join(rows) + "\n")
    return {"ESC50": str(corpus)}


def ljspeech(recipe: Path, corpus: Path, speech: Speech) -> dict[str, str]:
    """LJSpeech-1.1: ``metadata.csv`` (``LJ001-0001|raw text|normalized text``) and
    ``wavs/LJ001-0001.wav`` at 22.05 kHz; 510 utterances, more than the 500 the recipe holds
    out (the same 7 recordings, hard-linked)."""
    root = corpus / "LJSpeech-1.1"
    sources = recordings(corpus / "an4", speech, 22050)
    (root / "wavs").mkdir(parents=True)
    lines = []
    for n in range(510):
        name = f"LJ{n // 100 + 1:03d}-{n % 100 + 1:04d}"
        text = speech.utterances[n % len(sources)].text.capitalize()
        os.link(sources[n % len(sources)], root / "wavs" / f"{name}.wav")
        lines.append(f"{name}|{text}.|{text}.")
    (root / "metadata.csv").write_text("\n".join(lines) + "\n")
    return {"LJSPEECH": str(root)}


def ace_opencpop(recipe: Path, corpus: Path, speech: Speech) -> dict[str, str]:
    """The Hub dataset ``espnet/ace-opencpop-segments`` as the recipe downloads it:
    ``<recipe>/downloads/ace-opencpop-segments/data/{train,validation,test}-00000-of-00001
    .parquet``, one row per segment (48 kHz WAV bytes, phonemes with times, notes, tempo)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    data = recipe / "downloads" / "ace-opencpop-segments" / "data"
    data.mkdir(parents=True)
    for split, indexes in {"train": (0, 1, 2), "validation": (3, 4), "test": (5, 6)}.items():
        rows = [_singing_segment(speech, speech.utterances[n], n) for n in indexes]
        pq.write_table(pa.Table.from_pylist(rows), data / f"{split}-00000-of-00001.parquet")
    return {}


def _singing_segment(speech: Speech, utt: Utterance, n: int) -> dict:
    """One ACE-Opencpop row: ``acesinger_<singer>#<song><segment>``, one note per word."""
    duration = len(utt.audio) / AN4_RATE
    words = [(word, speech.phones(word)) for word in utt.text.split()]
    phones = [p for _, word_phones in words for p in word_phones]
    step = duration / len(phones)
    notes, start = [], 0.0
    for word, word_phones in words:
        end = start + step * len(word_phones)
        notes.append((start, end, word.lower(), 60 + len(notes), word_phones))
        start = end
    audio = io.BytesIO()
    sf.write(audio, resample(utt.audio, 48000), 48000, format="WAV", subtype="PCM_16")
    return {
        "segment_id": f"acesinger_{n % 2}#20{n:02d}000{n + 1}",
        "audio": {"bytes": audio.getvalue(), "path": f"{utt.utt_id}.wav"},
        "transcription": " ".join(phones),
        "singer": n % 2,
        "phn": phones,
        "phn_start_time": [round(i * step, 3) for i in range(len(phones))],
        "phn_end_time": [round((i + 1) * step, 3) for i in range(len(phones))],
        "note_start_times": [round(note[0], 3) for note in notes],
        "note_end_times": [round(note[1], 3) for note in notes],
        "note_lyrics": [note[2] for note in notes],
        "note_midi": [note[3] for note in notes],
        "note_phns": [note[4] for note in notes],
        "tempo": 120,
    }


def slurp(recipe: Path, corpus: Path, speech: Speech) -> dict[str, str]:
    """SLURP: ``dataset/slurp/{train,train_synthetic,devel,test}.jsonl`` prompts (sentence,
    scenario, action, recordings), ``dataset/slurp/metadata.json`` (who recorded what) and the
    16 kHz FLAC recordings under ``audio/slurp_real`` and ``audio/slurp_synth``."""
    intents = [("alarm", "set"), ("calendar", "query"), ("weather", "query"), ("iot", "wemo_on")]
    splits = {"train": [0, 1], "train_synthetic": [2, 3], "devel": [4], "test": [5, 6]}
    metadata = {}
    for split, indexes in splits.items():
        audio_dir = "slurp_synth" if split == "train_synthetic" else "slurp_real"
        prompts = []
        for n in indexes:
            utt, (scenario, action) = speech.utterances[n], intents[n % len(intents)]
            recording = f"audio-{1490955111 + n}.flac"
            write_audio(corpus / "audio" / audio_dir / recording, utt.audio)
            sentence = utt.text.lower()
            prompts.append(
                {
                    "slurp_id": n + 1,
                    "sentence": sentence,
                    "scenario": scenario,
                    "action": action,
                    "recordings": [{"file": recording}],
                }
            )
            if split != "train_synthetic":
                metadata[str(n + 1)] = {"recordings": {recording: {"usrid": f"FO-{utt.speaker}"}}}
        jsonl = corpus / "dataset" / "slurp" / f"{split}.jsonl"
        jsonl.parent.mkdir(parents=True, exist_ok=True)
        jsonl.write_text("".join(json.dumps(p) + "\n" for p in prompts))
    (corpus / "dataset" / "slurp" / "metadata.json").write_text(json.dumps(metadata))
    return {"SLURP": str(corpus)}


def voxlingua107(recipe: Path, corpus: Path, speech: Speech) -> dict[str, str]:
    """VoxLingua107: one folder per language, ``<lang>/<video>__U__S<n>---<start>-<end>.wav``
    (16 kHz), every language present, and ``dev/<lang>/...`` for a few languages (each clip a
    hard link to one of the AN4 recordings)."""
    sources = recordings(corpus / "an4", speech)  # not a language folder: the recipe skips it
    for n, language in enumerate(VOXLINGUA107_LANGUAGES):
        clip = corpus / language / f"an4clip{n:03d}__U__S0---0000.000-0002.000.wav"
        clip.parent.mkdir(parents=True)
        os.link(sources[n % len(sources)], clip)
    for n, language in enumerate(("en", "fr", "zh")):
        clip = corpus / "dev" / language / f"an4dev{n:03d}__U__S0---0000.000-0002.000.wav"
        clip.parent.mkdir(parents=True)
        os.link(sources[n], clip)
    return {"VOXLINGUA107": str(corpus)}


def audioset(recipe: Path, corpus: Path, speech: Speech) -> dict[str, str]:
    """AudioSet as the recipe expects it downloaded: the three segment lists
    (``<YTID>, <start>, <end>, "<labels>"``) and ``{eval,unbalanced,balance}_wav/<YTID>.wav``
    10 s 16 kHz clips (AN4 speech, back to back). One listed clip is not downloaded, one segment
    is 5 s (the recipe cuts it), as in the real corpus."""
    clip = np.concatenate([u.audio for u in speech.utterances])
    clip = np.resize(clip, 10 * AN4_RATE)
    lists = {
        "eval_segments.csv": ("eval_wav", ["evalclip001", "evalclip002"]),
        "unbalanced_train_segments.csv": ("unbalanced_wav", ["unbalclip01", "unbalclip02"]),
        "balanced_train_segments.csv": ("balance_wav", ["balclip0001", "notdownload"]),
    }
    for csv_name, (wav_dir, ids) in lists.items():
        lines = ["# Segments csv created by the corpus builder", "# YTID, start, end, labels"]
        for n, yt_id in enumerate(ids):
            start, end = (30.0, 35.0) if yt_id == "unbalclip02" else (float(n * 10), n * 10 + 10.0)
            lines.append(f'{yt_id}, {start:.3f}, {end:.3f}, "/m/09x0r,/m/05zppz"')
            if yt_id != "notdownload":
                write_audio(corpus / wav_dir / f"{yt_id}.wav", clip)
        (corpus / csv_name).write_text("\n".join(lines) + "\n")
    return {"AUDIOSET": str(corpus)}


def timit(recipe: Path, corpus: Path, speech: Speech) -> dict[str, str]:
    """TIMIT: ``{TRAIN,TEST}/<dialect>/<speaker>/<utterance>.{WAV,PHN}``; the WAV files are AN4's
    own 16 kHz NIST SPHERE files, the PHN files (``<start> <end> <phone>``) its dictionary's
    pronunciations, evenly timed between ``h#`` silences."""
    for n, utt in enumerate(speech.utterances):
        folder = corpus / utt.split.upper() / f"DR{n % 2 + 1}" / f"{utt.speaker.upper()}0"
        folder.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(utt.sphere, folder / f"SX{n + 1}.WAV")
        phones = ["h#", *speech.phones(utt.text), "h#"]
        bounds = np.linspace(0, len(utt.audio), len(phones) + 1).astype(int)
        rows = [f"{a} {b} {p}" for a, b, p in zip(bounds[:-1], bounds[1:], phones, strict=True)]
        (folder / f"SX{n + 1}.PHN").write_text("\n".join(rows) + "\n")
    return {"TIMIT": str(corpus)}
