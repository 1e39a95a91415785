"""Run upstream ESPnet3's recipes' data stages, unchanged, on this package.

Given an upstream checkout (or any directory holding upstream's ``egs3/``), its ``egs3`` tree
is copied into a temporary directory, never into this repository. For each recipe a small
corpus of real speech is written in the layout the recipe reads (``corpora.py``), the recipe's
data stages run as a user would run them, and what they wrote is checked: files, line formats,
counts, sample rates. Nothing is downloaded.

Each recipe runs through upstream's own entry point, ``cd egs3/<corpus>/<task> && python run.py
--stages ... --training_config conf/...`` (no PYTHONPATH: espnet3's ``egs3`` package resolves
to the recipe's tree), unless its ``run.py`` is missing or broken upstream or its config needs
a local path; those run through ``espnet3 create-dataset egs3/<corpus>/<task>``, and the table
says why.

    nox -s recipes -- /path/to/espnet                     # what nox runs (ESPnet2 environment)
    python tests/egs3/conformance.py /path/to/espnet --only esc50/cls --keep
    python tests/egs3/conformance.py /path/to/espnet --report docs/compatibility.md

A recipe whose own third-party imports or tools are not installed, or whose files the checkout
lacks, is not run (the table says which). A recipe known to fail, because of a gap in this
package or in upstream's recipe, says so (``known_failure`` in ``RECIPES``). The run fails when
any other recipe fails.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import corpora
import soundfile as sf

HERE = Path(__file__).resolve().parent
#: The real mini AN4 archive, in ``shared/`` beside the clone (as the test suite finds it).
MINI_AN4 = HERE.parents[1].parent / "shared" / "data" / "mini_an4" / "downloads.tar.gz"
START, END = "<!-- egs3-recipes:start -->", "<!-- egs3-recipes:end -->"
#: Variables the recipes read to find corpora and outputs, and those that would point Python or
#: espnet3 at another egs3 tree: the caller's are not passed on.
RECIPE_VARIABLES = (
    "AUDIOSET ESC50 ESC50_FOLD ESC50_OUTPUT LJSPEECH MUSAN RIRS_NOISES SLURP TIMIT TIMIT_OUTPUT "
    "VCTK_DEMAND VOXCELEB VOXLINGUA107 PYTHONPATH ESPNET3_EGS3"
).split()
RUN_PY, CLI = "run.py", "espnet3 create-dataset"
#: ``from egs3.TEMPLATE.<task>.run import ...`` in a recipe's run.py.
TEMPLATE_IMPORT = re.compile(r"from\s+egs3\.TEMPLATE\.(\w+)\.run\s+import")
TIMEOUT = 600
#: ``sph2pipe`` is not packaged for this machine, so the run puts this stand-in on PATH: it
#: does what ``sph2pipe -f wav -p -c 1 FILE [OUT]`` does for uncompressed 16-bit SPHERE.
FAKE_SPH2PIPE = '''#!{python}
"""Stand-in for sph2pipe (not installable here): SPHERE in, 16-bit PCM WAV out."""
import argparse, io, sys
import soundfile as sf
from espnet3.data.sphere import read_sphere
parser = argparse.ArgumentParser()
parser.add_argument("-f", choices=["wav"], default="wav")
parser.add_argument("-p", action="store_true")
parser.add_argument("-c", type=int)
parser.add_argument("infile")
parser.add_argument("outfile", nargs="?")
args = parser.parse_args()
samples, rate = read_sphere(args.infile)
if args.c and samples.ndim == 2:
    samples = samples[:, args.c - 1]
out = io.BytesIO()
sf.write(out, samples, rate, format="WAV", subtype="PCM_16")
with open(args.outfile, "wb") if args.outfile else sys.stdout.buffer as target:
    target.write(out.getvalue())
'''


class Mismatch(Exception):
    """An output of a recipe is missing or not what the recipe should have written."""


@dataclass(frozen=True)
class Run:
    """One finished recipe run, as its check sees it."""

    recipe: Path
    corpus: Path
    speech: corpora.Speech
    output: str


@dataclass(frozen=True)
class Recipe:
    """An upstream recipe, its corpus and how it is run and checked."""

    path: str  # <corpus>/<task> under egs3/
    task: str
    stages: tuple[str, ...]
    config: str  # the training config, inside the recipe
    corpus: Callable[[Path, Path, corpora.Speech], dict[str, str]]
    check: Callable[[Run], None]
    entry: str = RUN_PY
    why_entry: str = ""  # why espnet3's command and not run.py
    overrides: tuple[str, ...] = ()  # ``{corpus}`` is the corpus directory
    needs: tuple[str, ...] = ()  # third-party modules the recipe's own code imports
    tools: tuple[str, ...] = ()  # programs the recipe's own code runs
    #: (file under egs3/, regular expression, what it is): upstream code the recipe calls that
    #: an older checkout lacks
    calls: tuple[tuple[str, str, str], ...] = ()
    known_failure: str = ""  # why it fails, when it is known to ...
    failure_says: str = ""  # ... and what its error message then contains

    def command(self, work: Path, recipe: Path, corpus: Path) -> tuple[list[str], Path]:
        """The command line and its working directory."""
        if self.entry == RUN_PY:
            argv = ["run.py", "--stages", *self.stages, "--training_config", self.config]
            return [sys.executable, *argv], recipe
        overrides = [o.format(corpus=corpus) for o in self.overrides]
        script = Path(sys.executable).with_name("espnet3")
        argv = ["create-dataset", str(recipe), "--config", self.config]
        return [str(script), *argv, "--stages", *self.stages, *overrides], work

    def unmet(self, work: Path) -> str:
        """Why the recipe cannot run here, if it cannot: what it needs that is not installed,
        or files of the recipe the checkout lacks."""
        modules = [name for name in self.needs if importlib.util.find_spec(name) is None]
        tools = [name for name in self.tools if shutil.which(name) is None]
        absent = self.absent_files(work)
        why = [f"its code imports {', '.join(modules)}, not installed here"] if modules else []
        why += [f"its code runs {', '.join(tools)}, not installed here"] if tools else []
        why += [f"the checkout has no {', '.join(absent)}"] if absent else []
        why += [
            f"the checkout's egs3/{path} has no {what}"
            for path, pattern, what in self.calls
            if (work / "egs3" / path).is_file()
            and not re.search(pattern, (work / "egs3" / path).read_text(), re.S)
        ]
        return "; ".join(why)

    def absent_files(self, work: Path) -> list[str]:
        """The upstream files this run needs that ``work`` lacks: the recipe's config, dataset
        package (a directory: upstream's acesinger/svs has no ``__init__.py`` there, a namespace
        package) and run.py, and the defaults its config is merged over (those of the template
        run.py imports, else of the recipe's task)."""
        recipe = work / "egs3" / self.path
        run_py = recipe / "run.py"
        absent = [] if (recipe / "dataset").is_dir() else [recipe / "dataset"]
        needed = [recipe / self.config]
        template = recipe.name
        if self.entry == RUN_PY:
            needed.append(run_py)
            found = run_py.is_file() and TEMPLATE_IMPORT.search(run_py.read_text())
            template = found.group(1) if found else template
        needed.append(work / "egs3" / "TEMPLATE" / template / "conf" / "training.yaml")
        absent += [p for p in needed if not p.is_file()]
        return [str(p.relative_to(work)) for p in absent]

    def how_run(self) -> str:
        """The ``how run`` cell: the command, and why it is not run.py when it is not."""
        if self.entry == RUN_PY:
            return f"`run.py --training_config {self.config}`"
        overrides = [o.format(corpus="CORPUS") for o in self.overrides]
        return f"`{' '.join([CLI, '--config', self.config, *overrides])}`: {self.why_entry}"


# ------------------------------------------------------------------------------------- checks
def expect(condition: bool, message: str) -> None:
    """Raise :class:`Mismatch` with ``message`` unless ``condition`` holds."""
    if not condition:
        raise Mismatch(message)


def rows(path: Path, columns: int, sep: str | None = "\t") -> list[list[str]]:
    """The lines of a manifest, each split into exactly ``columns`` fields."""
    expect(path.is_file(), f"{path.name} was not written ({path})")
    lines = path.read_text(encoding="utf-8").splitlines()
    expect(bool(lines), f"{path} is empty")
    split = [line.split(sep) for line in lines]
    bad = [line for line, fields in zip(lines, split, strict=True) if len(fields) != columns]
    expect(not bad, f"{path}: {len(bad)} line(s) without {columns} fields, e.g. {bad[:1]}")
    return split


def audio(path: str | Path, rate: int) -> int:
    """Frames of a mono audio file at ``rate``."""
    expect(Path(path).is_file(), f"{path} does not exist")
    info = sf.info(str(path))
    expect(info.samplerate == rate, f"{path}: {info.samplerate} Hz, not {rate}")
    expect(info.channels == 1, f"{path}: {info.channels} channels")
    return info.frames


def count(table: list[list[str]], expected: int, what: str) -> None:
    """``table`` has ``expected`` lines."""
    expect(len(table) == expected, f"{what}: {len(table)} lines, expected {expected}")


def check_mini_an4(run: Run) -> None:
    """train/valid/test manifests ``utt_id<TAB>wav<TAB>text`` of 16 kHz WAVs, valid = 1."""
    texts = {u.text for u in run.speech.utterances}
    for split, expected in (("train", 4), ("valid", 1), ("test", 2)):
        table = rows(run.recipe / "data" / "manifest" / f"{split}.tsv", 3)
        count(table, expected, f"{split}.tsv")
        for utt_id, wav, text in table:
            expect(Path(wav).parent.name == ("test" if split == "test" else "train"), wav)
            expect(text in texts, f"{split}.tsv: {utt_id} has text {text!r}, not AN4's")
            audio(wav, 16000)


def check_voxceleb(run: Run) -> None:
    """Kaldi wav.scp/utt2spk/spk2utt per split, the Vox1-O trials, MUSAN and RIR lists."""
    data = run.recipe / "data"
    for split, expected in (
        ("voxceleb1_dev", 3),
        ("voxceleb1_test", 4),
        ("voxceleb2_dev", 2),
        ("voxceleb12_dev", 5),
    ):
        scp = rows(data / split / "wav.scp", 2, None)
        count(scp, expected, f"{split}/wav.scp")
        utt2spk = dict(rows(data / split / "utt2spk", 2, None))
        for utt_id, wav in scp:
            expect(utt2spk.get(utt_id) == utt_id.split("/")[0], f"{split}/utt2spk: {utt_id}")
            audio(wav, 16000)
        expect((data / split / "spk2utt").is_file(), f"{split}/spk2utt was not written")
    trials = rows(data / "voxceleb1_test" / "vox1_o.trials", 3, None)
    count(trials, 3, "vox1_o.trials")
    first = next(n for n, u in enumerate(run.speech.utterances) if u.split == "test") + 1
    expect(trials[0][1] == f"id10270/an4video1/{first:05d}", f"vox1_o.trials: {trials[0]}")
    for name, expected in (("musan_speech", 1), ("musan_noise", 2), ("musan_music", 2)):
        count(rows(data / f"{name}.scp", 1, None), expected, f"{name}.scp")
    count(rows(data / "rirs.scp", 1, None), 2, "rirs.scp")


def check_vctk(run: Run) -> None:
    """The builder only validates the four folders: it must find them and build nothing."""
    expect("create_dataset done" in run.output, "the stage did not report success")


def check_esc50(run: Run) -> None:
    """16 kHz WAVs converted from 44.1 kHz, fold 1 held out, filtered manifests, the train
    labels."""
    fold = run.recipe / "data" / "fold1"
    train = rows(fold / "manifest" / "train.tsv", 3)
    valid = rows(fold / "manifest" / "valid.tsv", 3)
    count(train, 5, "train.tsv")
    count(valid, 2, "valid.tsv")
    expect(valid == rows(fold / "manifest" / "test.tsv", 3), "test.tsv is not valid.tsv")
    for utt_id, wav, _ in train + valid:
        expect(Path(wav).name == f"{utt_id}.wav", f"{utt_id}: {wav}")
        audio(wav, 16000)
    expect(all(u.split("-")[0] == "1" for u, _, _ in valid), "valid is not fold 1")
    count(rows(fold / "manifest_filtered" / "train.tsv", 3), 5, "manifest_filtered/train.tsv")
    labels = (fold / "token_list").read_text().split()  # by frequency, <unk> last
    expected = sorted({label for _, _, label in train})
    expect(labels[-1:] == ["<unk>"] and sorted(labels[:-1]) == expected, f"token_list {labels}")


def check_ljspeech(run: Run) -> None:
    """The character token list, ``<unk>`` first, of the 10 utterances not held out."""
    tokens = (run.recipe / "data" / "tokens.txt").read_text().splitlines()
    texts = [u.text.capitalize() + "." for u in run.speech.utterances]
    expected = sorted({"<space>" if c == " " else c for text in texts for c in text})
    expect(tokens == ["<unk>", *expected], f"tokens.txt: {tokens}, expected <unk> + {expected}")


def check_acesinger(run: Run) -> None:
    """44.1 kHz WAVs and 6-column manifests (label times, JSON score), then the token list."""
    data = run.recipe / "data"
    for split, expected in (("train", 3), ("valid", 2), ("test", 2)):
        table = rows(data / "manifest" / f"{split}.tsv", 6)
        count(table, expected, f"{split}.tsv")
        for utt_id, wav, text, _, label, score in table:
            audio(wav, 44100)
            expect(len(label.split()) == 3 * len(text.split()), f"{utt_id}: label {label!r}")
            expect("note" in json.loads(score), f"{utt_id}: score {score!r}")
    count(rows(data / "manifest_filtered" / "train.tsv", 6), 3, "manifest_filtered/train.tsv")
    tokens = (data / "token_list" / "phn_none" / "tokens.txt").read_text().split()
    expect(tokens[:2] == ["<blank>", "<unk>"] and tokens[-1] == "<sos/eos>", f"tokens {tokens}")


def check_slurp(run: Run) -> None:
    """``slurp_<user>_<recording><TAB>flac<TAB>scenario_action<TAB>text`` and the intents."""
    manifest = run.recipe / "data" / "manifest"
    for split, expected in (("train", 2), ("train_synthetic", 2), ("devel", 1), ("test", 2)):
        table = rows(manifest / f"{split}.tsv", 4)
        count(table, expected, f"{split}.tsv")
        for utt_id, flac, intent, text in table:
            expect(utt_id.startswith("slurp_") and "_" in intent and text, f"{split}: {utt_id}")
            audio(flac, 16000)
    intents = (manifest / "intents.txt").read_text().split()
    expect(intents == sorted(intents) and len(intents) == 4, f"intents.txt: {intents}")


def check_voxlingua107(run: Run) -> None:
    """Manifests and index maps for 107 training languages and the dev languages."""
    data = run.recipe / "data" / "voxlingua107"
    train, dev = rows(data / "train" / "manifest.tsv", 3), rows(data / "dev" / "manifest.tsv", 3)
    count(train, 107, "train/manifest.tsv")
    count(dev, 3, "dev/manifest.tsv")
    expect({lang for _, _, lang in dev} == {"eng", "fra", "cmn"}, f"dev languages: {dev}")
    audio(train[0][1], 16000)
    count(rows(data / "train" / "category2utt", 2, None), 107, "train/category2utt")
    count(rows(data / "dev" / "utt2lang", 2, None), 3, "dev/utt2lang")


def check_audioset(run: Run) -> None:
    """``utt_id<TAB>wav<TAB>samples``: 10 s clips kept, the 5 s segment cut, missing skipped."""
    manifest = run.recipe / "data" / "manifest"
    train, evaluation = rows(manifest / "train.tsv", 3), rows(manifest / "eval.tsv", 3)
    count(train, 3, "train.tsv")
    count(evaluation, 2, "eval.tsv")
    expect(train[0][0] == "as2m_20k-AudioSet-0", f"train.tsv: {train[0][0]}")
    for _, wav, samples in train + evaluation:
        expect(audio(wav, 16000) == int(samples), f"{wav}: not {samples} samples")
    cut = [row for row in train if "cut_wav" in row[1]]
    expect(len(cut) == 1 and cut[0][2] == "80000", f"cut clips: {cut}")


def check_timit(run: Run) -> None:
    """One manifest of TRAIN and TEST, ``dr<n>-<speaker>-<utt><TAB>SPHERE<TAB>IPA``."""
    table = rows(run.recipe / "data" / "manifest" / "test.tsv", 3)
    count(table, len(run.speech.utterances), "test.tsv")
    for utt_id, wav, ipa in table:
        expect(re.fullmatch(r"dr\d-[fm]\w{3}0-sx\d", utt_id) is not None, f"utt id {utt_id}")
        expect(Path(wav).read_bytes()[:7] == b"NIST_1A", f"{wav} is not SPHERE")
        expect(bool(ipa), f"{utt_id} has no transcript")
    ipa = {utt_id: text for utt_id, _, text in table}
    # AN4's first utterance is "YES", h# y eh s h#: silences dropped, the rest in IPA.
    expect(ipa["dr1-fash0-sx1"] == "jɛs", f"dr1-fash0-sx1: {ipa['dr1-fash0-sx1']!r}, not 'jɛs'")


RECIPES = (
    Recipe(
        "mini_an4/asr",
        "speech recognition",
        ("create_dataset",),
        "conf/training.yaml",
        corpora.mini_an4,
        check_mini_an4,
    ),
    Recipe(
        "voxceleb/spk",
        "speaker verification",
        ("create_dataset",),
        "conf/tuning/training_rawnet3.yaml",
        corpora.voxceleb,
        check_voxceleb,
        calls=(
            (
                "TEMPLATE/asr/run.py",
                r"def main\([^)]*default_package",
                "`main(..., default_package=)`, which TEMPLATE/spk/run.py passes",
            ),
        ),
    ),
    Recipe(
        "vctk_noisy/enh",
        "speech enhancement",
        ("create_dataset",),
        "conf/training.yaml",
        corpora.vctk_demand,
        check_vctk,
        entry=CLI,
        why_entry="the config hard-codes `dataset_dir: /DB/VCTK_DEMAND`, which run.py cannot "
        "override (through run.py the stage stops there: VCTK-DEMAND is not prepared under it)",
        overrides=("dataset_dir={corpus}",),
    ),
    Recipe(
        "esc50/cls",
        "audio classification",
        ("create_dataset", "remove_long_short", "prepare_labels"),
        "conf/training.yaml",
        corpora.esc50,
        check_esc50,
        entry=CLI,
        why_entry="the recipe has no run.py",
        tools=("ffmpeg",),
    ),
    Recipe(
        "ljspeech/tts",
        "text to speech",
        ("create_dataset",),
        "conf/training.yaml",
        corpora.ljspeech,
        check_ljspeech,
        entry=CLI,
        why_entry="run.py reads `args.publish_config`, which its parser (TEMPLATE/asr/run.py's, "
        "through TEMPLATE/tts/run.py) now names `--publication_config`; character tokens, as "
        "g2p_en (phonemes) fetches NLTK data when first used",
        overrides=("create_dataset.token_type=char", "create_dataset.g2p_type=null"),
        needs=("espnet2",),
    ),
    Recipe(
        "acesinger/svs",
        "singing voice synthesis",
        ("create_dataset", "remove_long_short", "create_token_list"),
        "conf/training.yaml",
        corpora.ace_opencpop,
        check_acesinger,
        needs=("librosa",),
        known_failure="upstream's recipe has no dataset/__init__.py exporting `DatasetBuilder` "
        "and `Dataset` (only builder.py and dataset.py), which both upstream's "
        "`load_dataset_module` and espnet3 load a recipe's own dataset package from",
        failure_says="no dataset package at",
    ),
    Recipe(
        "slurp/esp2_slu",
        "spoken language understanding",
        ("create_dataset",),
        "conf/tuning/training_conformer.yaml",
        corpora.slurp,
        check_slurp,
    ),
    Recipe(
        "voxlingua107/esp2_lid",
        "language identification",
        ("create_dataset",),
        "conf/training.yaml",
        corpora.voxlingua107,
        check_voxlingua107,
    ),
    Recipe(
        "audioset/openbeats",
        "self-supervised pre-training",
        ("create_dataset",),
        "conf/training.yaml",
        corpora.audioset,
        check_audioset,
    ),
    Recipe(
        "timit/pr",
        "phone recognition",
        ("create_dataset",),
        "conf/training.yaml",
        corpora.timit,
        check_timit,
    ),
)


# ------------------------------------------------------------------------------------ running
@dataclass(frozen=True)
class Result:
    """What came of one recipe: its table row."""

    recipe: Recipe
    outcome: str  # pass, fail, known failure, not run
    why: str = ""
    seconds: float = 0.0

    def row(self) -> str:
        """The recipe's line of the markdown table."""
        r = self.recipe
        stages = " ".join(r.stages)
        why = self.why.replace("|", "\\|")
        return f"| {r.path} | {r.task} | {stages} | {r.how_run()} | {self.outcome} | {why} |"


def copy_recipes(checkout: Path, work: Path) -> None:
    """Copy upstream's ``egs3`` tree into ``work`` and put the stand-in ``sph2pipe`` in
    ``work/bin``."""
    if not (checkout / "egs3" / "TEMPLATE").is_dir():
        sys.exit(f"{checkout} has no egs3/TEMPLATE: give an upstream ESPnet checkout")
    shutil.copytree(checkout / "egs3", work / "egs3", symlinks=True)
    sph2pipe = work / "bin" / "sph2pipe"
    sph2pipe.parent.mkdir()
    sph2pipe.write_text(FAKE_SPH2PIPE.format(python=sys.executable))
    sph2pipe.chmod(0o755)


def run_recipe(recipe: Recipe, work: Path, speech: corpora.Speech) -> Result:
    """Build the recipe's corpus, run its stages, check what they wrote."""
    why_not = recipe.unmet(work)
    if why_not:
        return Result(recipe, "not run", why_not)
    directory = work / "egs3" / recipe.path
    corpus = work / "corpora" / recipe.path.replace("/", "_")
    corpus.mkdir(parents=True)
    env = {k: v for k, v in os.environ.items() if k not in RECIPE_VARIABLES}
    env.update(recipe.corpus(directory, corpus, speech))
    env["PATH"] = f"{work / 'bin'}{os.pathsep}{env['PATH']}"
    argv, cwd = recipe.command(work, directory, corpus)
    started = time.perf_counter()
    try:
        proc = subprocess.run(
            argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=TIMEOUT
        )
    except subprocess.TimeoutExpired as err:
        return failure(recipe, f"timed out after {TIMEOUT} s", TIMEOUT, str(err.output or ""))
    seconds = time.perf_counter() - started
    output = proc.stdout + proc.stderr
    (work / "logs").mkdir(exist_ok=True)
    (work / "logs" / f"{corpus.name}.log").write_text(f"$ {' '.join(argv)}\n{output}")
    if proc.returncode != 0:
        return failure(recipe, failure_reason(output), seconds, output)
    try:
        recipe.check(Run(directory, corpus, speech, output))
    except Mismatch as err:
        return failure(recipe, f"output check: {err}", seconds, output)
    return Result(recipe, "pass", "", seconds)


def failure(recipe: Recipe, why: str, seconds: float, output: str) -> Result:
    """A failed run: a known failure when it fails the known way, else a failure (whose
    output's tail is printed)."""
    if recipe.known_failure and recipe.failure_says in why:
        return Result(recipe, "known failure", recipe.known_failure, seconds)
    tail = "\n".join(output.splitlines()[-20:])
    print(f"--- {recipe.path} failed: {why}\n{tail}\n---", file=sys.stderr)
    return Result(recipe, "fail", why, seconds)


def failure_reason(output: str) -> str:
    """The line that says why a run failed: the exception's, else the last one."""
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    error = re.compile(r"^(espnet3: |[\w.]*(Error|Exception)\b)")
    errors = [line for line in lines if error.match(line)]
    return (errors or lines or [""])[-1][:240]


def summary(results: list[Result]) -> str:
    """One sentence: how many recipes passed, across how many tasks, and the rest."""
    outcomes = Counter(r.outcome for r in results)
    tasks = len({r.recipe.task for r in results if r.outcome == "pass"})
    return (
        f"Passed: {outcomes['pass']} of {len(results)} recipes; tasks covered: {tasks}; "
        f"failed: {outcomes['fail']}; failed for a known reason: {outcomes['known failure']}; "
        f"not run: {outcomes['not run']}."
    )


def write_report(path: Path, table: list[str], results: list[Result]) -> None:
    """Rewrite the part of ``path`` between the egs3-recipes markers."""
    text = path.read_text()
    head, found, rest = text.partition(START)
    _, found_end, tail = rest.partition(END)
    if not (found and found_end):
        sys.exit(f"{path} has no {START} ... {END} section")
    body = "\n".join([summary(results), "", *table])
    path.write_text(f"{head}{START}\n{body}\n{END}{tail}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkout", type=Path, help="upstream ESPnet (a directory with egs3/)")
    parser.add_argument("--only", nargs="+", metavar="RECIPE", help="e.g. esc50/cls mini_an4/asr")
    parser.add_argument("--report", type=Path, help="rewrite the recipes section of this file")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    parser.add_argument("--archive", type=Path, default=MINI_AN4, help="the mini AN4 archive")
    args = parser.parse_args()
    chosen = [r for r in RECIPES if not args.only or r.path in args.only]
    unknown = set(args.only or ()) - {r.path for r in RECIPES}
    if unknown:
        sys.exit(f"unknown recipe(s) {sorted(unknown)}; known: {[r.path for r in RECIPES]}")
    if not args.archive.is_file():
        sys.exit(f"the mini AN4 archive is not at {args.archive}: give it with --archive")
    work = Path(tempfile.mkdtemp(prefix="espnet3-egs3-"))
    try:
        copy_recipes(args.checkout.resolve(), work)
        speech = corpora.load_mini_an4(args.archive, work / "mini_an4")
        results = []
        for recipe in chosen:
            results.append(run_recipe(recipe, work, speech))
            result = results[-1]
            print(f"{recipe.path}: {result.outcome} ({result.seconds:.1f} s)", flush=True)
    finally:
        if args.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work)
    header = "| recipe | task | stages | how run | result | why not |"
    table = [header, "|---|---|---|---|---|---|", *(r.row() for r in results)]
    print("\n" + "\n".join(table) + "\n\n" + summary(results))
    for result in results:
        if result.outcome == "pass" and result.recipe.known_failure:
            print(f"NOW PASSES (drop its known_failure): {result.recipe.path}")
    if args.report:
        write_report(args.report, table, results)
    return 1 if any(r.outcome == "fail" for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
