"""End to end: ``espnet3 create-dataset`` on the mini AN4 recipe, as real subprocesses.

Every run writes into a temporary data directory (``data_dir=...``) from the real archive,
on the sequential backend, a 2-worker LocalCluster and (marked ``slurm``) a real SLURM.
"""

from __future__ import annotations

import gzip
import io
import json
import os
import re
import signal
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.archives import big_archive
from tests.conftest import MINI_AN4_ARCHIVE
from tests.timing import python_start_seconds

REPO = Path(__file__).resolve().parents[2]
RECIPE = REPO / "recipes" / "mini_an4" / "asr"
SPLITS = ("train", "valid", "test")

# Each test runs whole create-dataset subprocesses (cluster start-up included); the pytest
# default of 300 s is a hang guard too tight for a loaded 2-core machine.
pytestmark = pytest.mark.timeout(1800)


def run_cli(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run(
        [sys.executable, "-m", "espnet3", *args], capture_output=True, text=True, cwd=REPO
    )
    if check:
        assert proc.returncode == 0, proc.stderr
    return proc


def create_dataset(data_dir: Path, archive: Path, *extra: str, config: str | None = None):
    opts = ["--config", str(RECIPE / "conf" / config)] if config else []
    return run_cli(
        "create-dataset",
        str(RECIPE),
        *opts,
        f"create_dataset.archive={archive}",
        f"data_dir={data_dir}",
        *extra,
    )


def snapshot(data_dir: Path) -> dict:
    """Manifests verbatim, and the shape of every feature matrix (one HDF5 file per shard)."""
    import h5py

    manifests = {s: (data_dir / f"{s}.tsv").read_text() for s in SPLITS}
    shapes = {}
    for path in sorted((data_dir / "fbank").rglob("*.h5")):
        with h5py.File(path, "r") as f:
            for key in sorted(f):
                shapes[f"{path.relative_to(data_dir).as_posix()}:{key}"] = f[key].shape
    assert shapes, f"no features under {data_dir / 'fbank'}"
    return {"manifests": manifests, "shapes": shapes}


def finished_files(directory: Path) -> list[Path]:
    """The files in ``directory`` that are in place (not ``.<name>.<...>.tmp`` being written)."""
    if not directory.is_dir():
        return []
    return [p for p in directory.iterdir() if p.is_file() and not p.name.startswith(".")]


def finished_shards(directory: Path) -> list[Path]:
    """The counts files in ``directory``: one per shard whose files are all in place."""
    return [p for p in finished_files(directory) if p.name.endswith(".counts.json")]


def mtimes(directory: Path) -> dict[str, int]:
    return {str(p): p.stat().st_mtime_ns for p in sorted(directory.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def sequential_run(tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("seq") / "data"
    create_dataset(data_dir, MINI_AN4_ARCHIVE)
    return data_dir


def test_sequential_run_writes_manifests_features_and_cutsets(sequential_run):
    from lhotse import CutSet

    data_dir = sequential_run
    train = (data_dir / "train.tsv").read_text().splitlines()
    assert train[0] == "fash-an253-b\twav/train/fash-an253-b.wav\tGO\tfash"
    assert (
        data_dir / "valid.tsv"
    ).read_text() == "fash-an251-b\twav/valid/fash-an251-b.wav\tYES\tfash\n"
    assert len((data_dir / "test.tsv").read_text().splitlines()) == 2
    summary = json.loads((data_dir / "fbank" / "summary.json").read_text())
    assert {s: summary["splits"][s]["kept"] for s in SPLITS} == {"train": 4, "valid": 1, "test": 2}
    cut = CutSet.from_file(data_dir / "fbank" / "cuts_test.jsonl.gz")[0]
    assert cut.load_features().shape == (cut.num_frames, 80)
    assert cut.load_audio().shape == (1, cut.recording.num_samples)
    assert (cut.id, cut.supervisions[0].speaker) == ("fcaw-cen8-b", "fcaw")


def espnet_rule(archive: Path) -> dict[str, list[tuple[str, str, str]]]:
    """ESPnet egs2/mini_an4's data prep, applied to the archive's transcripts on its own:
    ``pre-mid-last`` becomes utterance ``mid-pre-last`` of speaker ``mid``; ids are sorted;
    the first train utterance is the dev set."""
    sets = {}
    with tarfile.open(archive) as tar:
        for name in ("train", "test"):
            member = next(m for m in tar if m.name.endswith(f"etc/an4_{name}.transcription"))
            rows = []
            for line in tar.extractfile(member).read().decode().splitlines():
                words, _, source = line.strip().rpartition(" (")
                words = words.removeprefix("<s> ").removesuffix(" </s>")
                pre, mid, last = source.rstrip(")").split("-")
                rows.append((f"{mid}-{pre}-{last}", words, mid))
            sets[name] = sorted(rows)
    return {"train": sets["train"][1:], "valid": sets["train"][:1], "test": sets["test"]}


def test_ids_speakers_and_split_are_espnets(sequential_run, mini_an4_archive):
    ours = {
        split: [
            (utt, text, speaker)
            for utt, _, text, speaker in (
                line.split("\t")
                for line in (sequential_run / f"{split}.tsv").read_text().splitlines()
            )
        ]
        for split in SPLITS
    }
    assert ours == espnet_rule(mini_an4_archive)
    assert ours["valid"] == [("fash-an251-b", "YES", "fash")]


def test_cuts_load_and_validate_with_plain_lhotse_from_any_directory(sequential_run, tmp_path):
    code = (
        "import sys; from lhotse import CutSet, validate\n"
        "cuts = CutSet.from_file(sys.argv[1]); validate(cuts, read_data=True)\n"
        "print(sorted({s.speaker for c in cuts for s in c.supervisions}))"
    )
    path = sequential_run / "fbank" / "cuts_train.jsonl.gz"
    out = subprocess.run(
        [sys.executable, "-c", code, str(path)], cwd=tmp_path, capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "['fash', 'fbbh', 'mwhw']"


def test_second_run_does_no_work(sequential_run, mini_an4_archive):
    before = mtimes(sequential_run)
    proc = create_dataset(sequential_run, mini_an4_archive)
    assert "already built" in proc.stdout
    assert mtimes(sequential_run) == before


def test_data_directory_can_move(sequential_run, tmp_path):
    from espnet3.components.data.dataset_module import load_dataset_module

    moved = tmp_path / "moved"
    subprocess.run(["cp", "-a", str(sequential_run), str(moved)], check=True)
    package = load_dataset_module("mini_an4/asr")
    item = package.Dataset(split="test", data_dir=moved)[0]
    assert item["utt_id"] == "fcaw-cen8-b" and item["speech"].dtype == np.float32
    cut = package.load_cuts(moved, "test")[1]
    assert cut.load_features().shape[1] == 80
    assert cut.features.storage_path.startswith(str(moved.resolve()))
    assert cut.recording.sources[0].source.startswith(str(moved.resolve()))


def test_recipe_yaml_feeds_data_organizer_and_dataloader(sequential_run):
    from espnet3.cli.recipe_config import load_recipe_config
    from espnet3.components.data.data_organizer import DataOrganizer
    from espnet3.components.data.dataloader import DataLoaderBuilder

    config = load_recipe_config(RECIPE, overrides=[f"data_dir={sequential_run}"])
    organizer = DataOrganizer.from_config(config.dataset, recipe_dir=RECIPE)
    assert (len(organizer.train), len(organizer.valid)) == (4, 1)
    assert organizer.test["test"][0]["utt_id"] == "fcaw-cen8-b"
    loaders = DataLoaderBuilder(organizer, config)  # the whole config, as upstream passes it
    batches = list(loaders.build("train"))
    assert sorted(uid for uids, _ in batches for uid in uids) == sorted(
        line.split("\t")[0] for line in (sequential_run / "train.tsv").read_text().splitlines()
    )
    uids, batch = batches[0]
    assert batch["speech"].dtype == torch.float32 and batch["speech"].shape[0] == len(uids) == 2
    assert batch["speech_lengths"].max() == batch["speech"].shape[1]
    [(valid_uids, _)] = list(loaders.build("valid"))
    assert valid_uids == ["fash-an251-b"]


def test_local_cluster_gives_identical_results(sequential_run, mini_an4_archive, tmp_path):
    data_dir = tmp_path / "data"
    # parallel.start=now: the cluster is used however small the work (see the next test)
    create_dataset(data_dir, mini_an4_archive, "+parallel.start=now", config="local.yaml")
    assert snapshot(data_dir) == snapshot(sequential_run)


@pytest.mark.slurm
def test_slurm_gives_identical_results(sequential_run, mini_an4_archive, tmp_path):
    data_dir = tmp_path / "data"
    create_dataset(
        data_dir,
        mini_an4_archive,
        f"parallel.log_dir={tmp_path / 'logs'}",
        "+parallel.start=now",
        config="slurm.yaml",
    )
    assert snapshot(data_dir) == snapshot(sequential_run)


@pytest.mark.slurm
def test_sbatch_script_prepares_the_same_data(sequential_run, mini_an4_archive, tmp_path):
    """slurm/mini_an4.sbatch as a user submits it; its one worker job fits the 2-CPU node."""
    data_dir, log = tmp_path / "data", tmp_path / "parent.log"
    proc = subprocess.run(
        [
            "sbatch",
            "--wait",
            f"--output={log}",
            "slurm/mini_an4.sbatch",
            f"create_dataset.archive={mini_an4_archive}",
            f"data_dir={data_dir}",
            "parallel.n_workers=1",
            "+parallel.start=now",
            f"parallel.log_dir={tmp_path / 'logs'}",
        ],
        cwd=REPO,
        env={**os.environ, "PYTHON": sys.executable},
        capture_output=True,
        text=True,
        timeout=1500,
    )
    assert proc.returncode == 0, proc.stderr + (log.read_text() if log.exists() else "")
    assert snapshot(data_dir) == snapshot(sequential_run)


def test_cleaning_drops_short_utterances_and_reports_them(mini_an4_archive, tmp_path):
    data_dir = tmp_path / "data"
    proc = create_dataset(data_dir, mini_an4_archive, "stages.0.args.min_duration=0.8")
    train = json.loads((data_dir / "fbank" / "summary.json").read_text())["splits"]["train"]
    # fash-an253-b ("GO") lasts 0.7 s.
    assert train["kept"] == 3 and train["dropped"] == {"empty_text": 0, "too_short": 1}
    assert '"too_short": 1' in proc.stdout


def rewrite_archive(source: Path, target: Path, edit) -> Path:
    """Copy the real archive, letting ``edit(name, data)`` change (or drop: None) members."""
    with tarfile.open(source) as src, tarfile.open(target, "w:gz") as dst:
        for member in src.getmembers():
            data = src.extractfile(member).read() if member.isfile() else None
            if data is not None:
                data = edit(member.name, data)
                if data is None:
                    continue
                member.size = len(data)
            dst.addfile(member, io.BytesIO(data) if data is not None else None)
    return target


def fails_with(data_dir: Path, archive: Path) -> str:
    proc = run_cli(
        "create-dataset",
        str(RECIPE),
        f"create_dataset.archive={archive}",
        "create_dataset.sha256=null",
        f"data_dir={data_dir}",
        check=False,
    )
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("espnet3: error: "), proc.stderr
    return lines[0]


def test_corrupt_sphere_is_one_clear_error(mini_an4_archive, tmp_path):
    def corrupt(name, data):
        return b"GARBAGE" + data[7:] if name.endswith("an253-fash-b.sph") else data

    archive = rewrite_archive(mini_an4_archive, tmp_path / "bad.tar.gz", corrupt)
    message = fails_with(tmp_path / "data", archive)
    assert "an253-fash-b" in message and "not a NIST SPHERE file" in message


def test_missing_transcript_is_one_clear_error(mini_an4_archive, tmp_path):
    def drop(name, data):
        return None if name.endswith("an4_test.transcription") else data

    archive = rewrite_archive(mini_an4_archive, tmp_path / "bad.tar.gz", drop)
    message = fails_with(tmp_path / "data", archive)
    assert "an4_test.transcription is missing" in message


def test_wrong_checksum_is_one_clear_error(mini_an4_archive, tmp_path):
    proc = run_cli(
        "create-dataset",
        str(RECIPE),
        f"create_dataset.archive={mini_an4_archive}",
        "create_dataset.sha256=" + "f" * 64,
        f"data_dir={tmp_path / 'data'}",
        check=False,
    )
    assert proc.returncode == 1 and "expected fff" in proc.stderr
    assert not (tmp_path / "data" / "source").exists()


def test_sigint_during_features_then_rerun_completes_without_redoing_shards(
    mini_an4_archive, tmp_path
):
    archive = big_archive(mini_an4_archive, tmp_path / "big.tar", copies=200)
    data_dir = tmp_path / "data"
    cmd = [
        sys.executable, "-m", "espnet3", "create-dataset", str(RECIPE),
        f"create_dataset.archive={archive}", "create_dataset.sha256=null",
        f"data_dir={data_dir}", "stages.0.args.shard_size=10",
    ]  # fmt: skip
    proc = subprocess.Popen(cmd, cwd=REPO, stderr=subprocess.PIPE, text=True)
    shards = data_dir / "fbank" / "train" / "shards"
    while proc.poll() is None and len(finished_shards(shards)) < 2:
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130, stderr
    assert "interrupted" in stderr
    done = finished_shards(shards)  # each one's part was renamed into place before it
    parts = [counts.with_name(counts.name.replace(".counts.json", ".jsonl.gz")) for counts in done]
    finished = {str(p): p.stat().st_mtime_ns for p in done + parts}
    n_shards = -(-(4 + 5 * 200) // 10)
    assert 2 <= len(done) < n_shards
    subprocess.run(cmd, cwd=REPO, check=True, capture_output=True)
    after = mtimes(shards)
    assert len(finished_shards(shards)) == n_shards and len(after) == 2 * n_shards
    assert {p: after[p] for p in finished} == finished
    summary = json.loads((data_dir / "fbank" / "summary.json").read_text())
    assert summary["splits"]["train"]["kept"] == 4 + 5 * 200
    with gzip.open(data_dir / "fbank" / "cuts_train.jsonl.gz", "rt") as f:
        ids = [json.loads(line)["id"] for line in f]
    assert len(ids) == len(set(ids)) == 4 + 5 * 200


@pytest.mark.parametrize("reaches", ["group", "parent"])
def test_ctrl_c_on_local_workers_prints_one_line_quickly(mini_an4_archive, tmp_path, reaches):
    """Ctrl-C from a terminal reaches the whole foreground process group (parent and local
    workers alike); ``kill -INT`` reaches the parent only. Either way: one line, exit 130,
    no worker left, and no graceful close (that waits 4 s per worker)."""
    import psutil

    archive = big_archive(mini_an4_archive, tmp_path / "big.tar", copies=200)
    data_dir = tmp_path / "data"
    cmd = [
        sys.executable, "-m", "espnet3", "create-dataset", str(RECIPE),
        "--config", str(RECIPE / "conf" / "local.yaml"), "+parallel.start=now",
        f"create_dataset.archive={archive}", "create_dataset.sha256=null",
        f"data_dir={data_dir}", "stages.0.args.shard_size=10",
    ]  # fmt: skip
    baseline = python_start_seconds()  # measured before: the run ends a few seconds later
    proc = subprocess.Popen(
        cmd, cwd=REPO, stderr=subprocess.PIPE, text=True, start_new_session=True
    )
    shards = data_dir / "fbank" / "train" / "shards"
    while proc.poll() is None and not (shards.is_dir() and len(list(shards.iterdir())) >= 2):
        time.sleep(0.05)
    children = psutil.Process(proc.pid).children(recursive=True)
    assert len(children) >= 2, "the 2 local workers should be running by now"
    started = time.monotonic()
    (os.killpg if reaches == "group" else os.kill)(proc.pid, signal.SIGINT)
    _, stderr = proc.communicate(timeout=120)
    took = time.monotonic() - started
    assert proc.returncode == 130, stderr
    *said, last = stderr.splitlines()
    # Where the work ran (and any progress line), then one line saying how far it came.
    assert said and all(line.startswith("espnet3: INFO: ") for line in said), stderr
    assert "cluster started: 2 local worker(s) (parallel.start: now)" in said[0]
    assert re.fullmatch(
        r"espnet3: interrupted; finished work is kept, run again to resume "
        r"\(FbankShardRunner: \d+ of \d+ items done\)",
        last,
    ), stderr
    _, alive = psutil.wait_procs(children, timeout=2 * baseline)
    assert not alive, [" ".join(p.cmdline()) for p in alive]
    # Idle: about 0.3 s against a baseline of about 1.5 s (a graceful close took 4.7 s).
    assert took < 2 * baseline, f"{took:.2f} s to stop, baseline {baseline:.2f} s"


def test_offline_download_suggests_a_local_archive(tmp_path):
    proc = run_cli(
        "create-dataset",
        str(RECIPE),
        "create_dataset.url=http://archive.invalid/downloads.tar.gz",
        f"data_dir={tmp_path / 'data'}",
        check=False,
    )
    assert proc.returncode == 1
    assert "nothing was received" in proc.stderr and "create_dataset.archive=" in proc.stderr


def test_config_is_found_inside_the_recipe_and_debug_goes_anywhere(mini_an4_archive, tmp_path):
    proc = run_cli(
        "create-dataset",
        str(RECIPE),
        "--config",
        "conf/local.yaml",
        "--debug",
        f"create_dataset.archive={mini_an4_archive}",
        f"data_dir={tmp_path / 'data'}",
    )
    assert proc.stdout.splitlines()[0] == "dataset mini_an4/asr: prepare_source, build"
    assert not list((tmp_path / "data").glob(".espnet3-*.lock"))
    assert not (RECIPE / ".espnet3").exists() or not list((RECIPE / ".espnet3").rglob("*.lock"))
    missing = run_cli("create-dataset", str(RECIPE), "--config", "conf/nope.yaml", check=False)
    assert "'conf/nope.yaml' does not exist (looked in" in missing.stderr


def test_kaldi_export_reads_back_with_lhotse_and_describe_agrees(sequential_run, tmp_path):
    from lhotse.kaldi import load_kaldi_data_dir

    out = tmp_path / "kaldi"
    proc = run_cli("export", "kaldi", str(sequential_run), str(out))
    assert proc.stdout.splitlines() == [f"wrote {out / split}" for split in SPLITS]
    for split in SPLITS:
        ours = [
            line.split("\t") for line in (sequential_run / f"{split}.tsv").read_text().splitlines()
        ]
        recordings, supervisions, _ = load_kaldi_data_dir(out / split, sampling_rate=16000)
        assert [(s.id, s.text, s.speaker) for s in supervisions] == [
            (utt, text, speaker) for utt, _, text, speaker in ours
        ]
        assert [r.sources[0].source for r in recordings] == [
            str(sequential_run.resolve() / wav) for _, wav, _, _ in ours
        ]
        spk2utt = (out / split / "spk2utt").read_text().splitlines()
        assert spk2utt == sorted(spk2utt)
        assert sorted(u for line in spk2utt for u in line.split()[1:]) == [u for u, *_ in ours]
    described = run_cli("describe", str(sequential_run), "--plot", str(tmp_path / "d.png"))
    lines = described.stdout.splitlines()
    assert lines[0].split() == [
        "split",
        "utterances",
        "hours",
        "mean",
        "s",
        "speakers",
        "vocabulary",
    ]
    train = lines[1].split()
    assert (train[0], train[1], train[4], train[5]) == ("train", "4", "3", "11")
    assert (tmp_path / "d.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # The exported Kaldi directories describe the same way.
    again = run_cli("describe", str(out)).stdout.splitlines()
    assert [line.split()[:2] + line.split()[4:] for line in again[1:]] == [
        line.split()[:2] + line.split()[4:] for line in lines[1:4]
    ]


def test_damaged_outputs_are_named_then_rebuilt_by_the_next_run(
    sequential_run, mini_an4_archive, tmp_path
):
    """A truncated CutSet, feature file and WAV, and a garbled settings.json, after a finished
    run: describe names the damaged file in one line; the next run rebuilds exactly those
    files and the data equals the untouched run's."""
    import h5py

    data_dir = tmp_path / "data"
    subprocess.run(["cp", "-a", str(sequential_run), str(data_dir)], check=True)
    cuts = data_dir / "fbank" / "cuts_train.jsonl.gz"
    cuts.write_bytes(cuts.read_bytes()[: cuts.stat().st_size // 2])
    h5 = sorted((data_dir / "fbank" / "train").glob("*.h5"))[0]
    os.truncate(h5, h5.stat().st_size // 2)
    wav = sorted((data_dir / "wav" / "test").glob("*.wav"))[0]
    os.truncate(wav, wav.stat().st_size - 1000)
    (data_dir / "fbank" / "settings.json").write_text('{"num_mel_bins": 8')

    described = run_cli("describe", str(data_dir / "fbank"), check=False)
    assert described.returncode != 0 and "Traceback" not in described.stderr
    assert str(cuts) in described.stderr and "is damaged" in described.stderr

    create_dataset(data_dir, mini_an4_archive)
    assert snapshot(data_dir) == snapshot(sequential_run)
    from lhotse import CutSet

    rebuilt, original = (
        CutSet.from_file(cuts),
        CutSet.from_file(sequential_run / "fbank" / cuts.name),
    )
    assert [(c.id, c.num_frames) for c in rebuilt] == [(c.id, c.num_frames) for c in original]
    here = str(data_dir.resolve())  # the copy's cuts name the copy's files, not the original's
    assert all(c.features.storage_path.startswith(here) for c in rebuilt)
    assert all(c.recording.sources[0].source.startswith(here) for c in rebuilt)
    assert wav.read_bytes() == (sequential_run / wav.relative_to(data_dir)).read_bytes()
    with h5py.File(h5, "r"):
        pass
    assert json.loads((data_dir / "fbank" / "settings.json").read_text())["num_mel_bins"] == 80


def test_a_full_disk_while_writing_wavs_names_the_errno_and_the_file(an4_sphere_dir, small_disk):
    """ENOSPC on a real 128 KB tmpfs: soundfile writing to a file object used to turn it into
    "AssertionError: ;". Now the error is the OS's, naming the WAV, and nothing half-written
    stays."""
    import errno
    import importlib

    from espnet3.components.data.dataset_module import load_dataset_module

    builder = importlib.import_module(load_dataset_module("mini_an4/asr").__name__ + ".builder")
    disk = small_disk(128 * 1024)
    spheres = sorted(an4_sphere_dir.rglob("*.sph"))
    with pytest.raises(OSError) as err:
        for i, sphere in enumerate(spheres):
            builder.convert_sphere((sphere, disk / f"u{i}.wav", f"u{i}"))
    failed = Path(err.value.filename)
    assert err.value.errno == errno.ENOSPC and failed.parent == disk
    assert "No space left on device" in str(err.value) and str(failed) in str(err.value)
    assert not failed.exists() and not list(disk.glob(".*.tmp"))


def test_a_run_removes_what_killed_runs_left_and_keeps_a_live_writers_files(
    mini_an4_archive, tmp_path
):
    """Temporary files and directories of the targets a run writes, named by a process that
    is gone (a killed run), are removed; one of a live process is kept."""
    import re

    from espnet3.utils.atomic import temp_name

    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True).stdout.strip()  # fmt: skip
    data_dir = tmp_path / "data"

    def left_by(pid: str, target: Path, directory: bool = False) -> Path:
        path = Path(re.sub(r"-\d+\.tmp$", f"-{pid}.tmp", temp_name(target)))
        path.parent.mkdir(parents=True, exist_ok=True)
        if directory:
            path.mkdir()
            (path / "an4" / "wav").mkdir(parents=True)  # half a copy of the corpus
        else:
            path.write_bytes(b"half")
        return path

    killed = [
        left_by(gone, data_dir / "source", directory=True),
        left_by(gone, data_dir / "wav" / "train" / "fash-an253-b.wav"),
        left_by(gone, data_dir / "fbank" / "train" / "00000000.h5"),
        left_by(gone, data_dir / "fbank" / "train" / "shards" / "00000.jsonl.gz"),
        left_by(gone, data_dir / "fbank" / "train" / "shards" / "00000.counts.json"),
        left_by(gone, data_dir / "fbank" / "cuts_train.jsonl.gz"),
    ]
    live = left_by(str(os.getpid()), data_dir / "wav" / "train" / "other.wav")
    create_dataset(data_dir, mini_an4_archive)
    assert [p for p in killed if p.exists()] == []
    assert live.exists()
    assert sorted(p.name for p in data_dir.rglob("*.tmp")) == [live.name]


def test_a_batch_log_shows_progress_and_where_the_work_ran(mini_an4_archive, tmp_path):
    """stderr a file, as a SLURM ``.out`` is: progress lines as the work goes (every 0.2 s
    here, 30 s by default), and once per block where the work ran and why."""
    log_file = tmp_path / "slurm-1.out"
    with open(log_file, "w") as out:
        proc = subprocess.run(
            [sys.executable, "-m", "espnet3", "create-dataset", str(RECIPE),
             "--config", str(RECIPE / "conf" / "local.yaml"),
             f"create_dataset.archive={mini_an4_archive}", f"data_dir={tmp_path / 'data'}"],
            stdout=out, stderr=out, cwd=REPO,
            env={**os.environ, "ESPNET3_PROGRESS_SECONDS": "0.2"},
        )  # fmt: skip
    text = log_file.read_text()
    assert proc.returncode == 0, text
    assert "\r" not in text and "it/s" not in text  # no terminal bar in a file
    lines = text.splitlines()
    where = [line for line in lines if "cluster started: " in line or "ran in process: " in line]
    assert where, text
    assert all(
        re.fullmatch(r"espnet3: INFO: cluster started: 2 local worker\(s\) \(remaining work "
                     r"about \d+ s > 5 s\)", line)
        or re.fullmatch(r"espnet3: INFO: ran in process: the work, about [\d.]+ s, was not "
                        r"worth a cluster \(more than 5 s of it is\)", line)
        for line in where
    ), where  # fmt: skip
    ended = [line for line in lines if re.fullmatch(r"espnet3: INFO: \w+: (\d+)/\1 items .*", line)]
    assert {line.split(":")[2].strip() for line in ended} >= {"FbankShardRunner"}, text


def test_shards_hold_about_shard_seconds_of_audio(mini_an4_archive, tmp_path):
    """Not a fixed count of utterances: 1004 short training utterances make a few files."""
    archive = big_archive(mini_an4_archive, tmp_path / "big.tar", copies=200)
    data_dir = tmp_path / "data"
    create_dataset(
        data_dir, archive, "create_dataset.sha256=null", "stages.0.args.shard_seconds=300"
    )
    summary = json.loads((data_dir / "fbank" / "summary.json").read_text())
    assert summary["settings"]["shard_seconds"] == 300 and summary["settings"]["shard_size"] is None
    train = summary["splits"]["train"]
    seconds = train["frames"] / 100  # 10 ms frames
    files = sorted((data_dir / "fbank" / "train" / "shards").glob("*.jsonl.gz"))
    assert abs(len(files) - seconds / 300) <= 1, (len(files), seconds)
    assert 1 < len(files) < train["utterances"] / 10
