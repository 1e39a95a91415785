"""Every fault and attack of docs/reliability.md, tried for real and measured; rewrites its table.

Each case below is one row: its docstring is the fault, its body causes it (a real
LocalCluster, real shard processes, the real SLURM, real archives and audio) and checks what
happened. A case whose outcome is not the documented one is reported ``NOT HELD`` and the
script exits 1, so the table only ever shows what this code does.

    python benchmarks/reliability.py               # every case this machine can run
    python benchmarks/reliability.py --only S1a D2 # some cases (nothing is written)
    nox -s reliability                             # starts the single-node SLURM first

SLURM cases run when ``sinfo`` answers (``bash slurm/local-cluster.sh up``); otherwise they
are listed as not run.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import pickle
import re
import shutil
import signal
import stat
import subprocess
import sys
import tarfile
import tempfile
import textwrap
import threading
import time
import traceback
import zipfile
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TOYS = ROOT / "tests" / "runner"  # runner_toys: importable by workers and shard processes
sys.path[:0] = [str(ROOT), str(TOYS)]
os.environ["PYTHONPATH"] = os.pathsep.join(
    p for p in (str(ROOT), str(TOYS), os.environ.get("PYTHONPATH", "")) if p
)

from benchmarks.common import machine, spin_item, table, write_section  # noqa: E402
from tests.archives import (  # noqa: E402
    ESCAPE,
    big_archive,
    file_member,
    link_member,
    make_tar,
    tree,
)

DOC = ROOT / "docs" / "reliability.md"
ARCHIVE = ROOT.parent / "shared" / "data" / "mini_an4" / "downloads.tar.gz"
RECIPE = ROOT / "recipes" / "mini_an4" / "asr"
LOCAL = {"env": "local", "n_workers": 2}
TOY_CFG = {"n": 40, "scale": 3, "bias": 1}
SLURM_OPTIONS = {"cores": 1, "memory": "1GB", "interface": "lo", "walltime": "00:10:00"}


@dataclass
class Row:
    """What a case measured. ``seconds`` says what it times; ``-``: does not apply."""

    happens: str
    seconds: str
    jobs_left: str = "-"
    lost: str = "-"
    duplicated: str = "-"


@dataclass
class Case:
    key: str
    run: Callable[[Path], Row]
    test: str
    slurm: bool

    @property
    def fault(self) -> str:
        return " ".join(self.run.__doc__.split())


CASES: list[Case] = []


def case(key: str, test: str, slurm: bool = False):
    """Register a case; ``test`` names the test that holds the same behaviour."""

    def register(fn: Callable[[Path], Row]) -> Callable[[Path], Row]:
        CASES.append(Case(key, fn, test, slurm))
        return fn

    return register


class Clock:
    """``with Clock() as c: ...``; then ``c.s`` is the elapsed seconds."""

    def __enter__(self) -> Clock:
        self.t0 = time.perf_counter()
        return self

    def __exit__(self, *exc) -> None:
        self.s = time.perf_counter() - self.t0


def refused(fn: Callable[[], object], *errors: type[BaseException]) -> BaseException:
    """The exception ``fn`` raised (one of ``errors``); AssertionError when it did not raise."""
    try:
        fn()
    except errors as err:
        return err
    raise AssertionError(f"{fn} was not refused")


def first_line(err: BaseException) -> str:
    return str(err).splitlines()[0].replace("|", "/")


def expected(indices, drop=()) -> list[dict]:
    """What runner_toys.ToyRunner returns for ``TOY_CFG``."""
    return [{"idx": i, "utt_id": f"utt{i:03d}", "y": 3 * i + 1} for i in indices if i not in drop]


def count_lost_and_duplicated(got: list[int], want: list[int]) -> tuple[int, int]:
    counts = Counter(got)
    return len(set(want) - set(counts)), sum(n - 1 for n in counts.values() if n > 1)


def said(text: str, tmp: Path) -> str:
    """The first clause of a shard's status detail or error, without the run's paths and pids
    (a detail goes on with the tail of the job's log)."""
    clause = text.splitlines()[0].split(";")[0].split(" (")[0] if text else ""
    clause = clause.replace(str(tmp), "$TMP").replace("|", "/")
    return re.sub(r"process \d+", "process <pid>", clause)


# --- security -------------------------------------------------------------------------------


def _strangers_refused(client) -> tuple[float, int]:
    """Seconds for a plain client and a stranger's certificate to be refused; how many were."""
    from distributed import Client
    from distributed.security import Security

    port = client.scheduler.address.rsplit(":", 1)[1]
    host = client.scheduler.address.split("://", 1)[1].rsplit(":", 1)[0]
    host = "127.0.0.1" if host == "0.0.0.0" else host
    attempts = [
        lambda: Client(f"tcp://{host}:{port}", timeout="3s"),
        lambda: Client(f"tls://{host}:{port}", security=Security.temporary(), timeout="3s"),
    ]
    n = 0
    quiet = logging.getLogger("distributed.comm")  # the scheduler logs each failed handshake
    level, quiet.level = quiet.level, logging.ERROR
    with Clock() as clock:
        for attempt in attempts:
            with contextlib.suppress(OSError, TimeoutError):
                attempt().close()
                continue
            n += 1
    quiet.setLevel(level)
    return clock.s, n


def _tls_row(options: dict) -> Row:
    import psutil

    from espnet3.parallel import get_client

    with get_client({"env": "local", "n_workers": 1, "options": options}) as client:
        address = client.scheduler.address
        bound = sorted(
            {
                c.laddr.ip
                for c in psutil.Process().net_connections(kind="inet")
                if c.status == psutil.CONN_LISTEN and c.laddr.port == int(address.rsplit(":")[-1])
            }
        )
        seconds, n_refused = _strangers_refused(client)
        works = client.submit(pow, 3, 2).result() == 9
    assert address.startswith("tls://") and n_refused == 2 and works, (address, n_refused)
    return Row(
        f"scheduler bound {', '.join(bound)} over TLS; a plain client and one with another "
        "certificate are refused; the cluster's own workers run",
        f"{seconds:.1f} (both refused)",
    )


@case(
    "S1a",
    "tests/parallel/test_security.py::test_auto_decides_from_where_scheduler_kwargs_bind_the_scheduler",
)
def tls_scheduler_kwargs(tmp: Path) -> Row:
    """`security: auto`, `options: {scheduler_kwargs: {host: 0.0.0.0}}`: every interface."""
    return _tls_row({"scheduler_kwargs": {"host": "0.0.0.0"}})


@case(
    "S1b",
    "tests/parallel/test_security.py::test_auto_turns_tls_on_everywhere_and_none_turns_it_off",
)
def tls_host(tmp: Path) -> Row:
    """`security: auto`, `options: {host: 0.0.0.0}`."""
    return _tls_row({"host": "0.0.0.0"})


@case("S1c", "tests/parallel/test_security.py::test_interface_lo_is_a_loopback_cluster")
def tls_interface(tmp: Path) -> Row:
    """`security: auto`, `options: {interface: <the default route's interface>}`."""
    routes = [line.split() for line in Path("/proc/net/route").read_text().splitlines()[1:]]
    names = [fields[0] for fields in routes if fields[1] == "00000000"]
    assert names, "this machine has no default route"
    return _tls_row({"interface": names[0]})


@case(
    "S1e",
    "tests/parallel/test_security.py::test_another_process_without_the_certificate_cannot_use_a_loopback_cluster",
)
def tls_loopback(tmp: Path) -> Row:
    """The default local cluster (`env: local`, no options): on 127.0.0.1, which every user of
    a shared login node or workstation can reach."""
    return _tls_row({})


@case(
    "S1d",
    "tests/parallel/test_security.py::test_a_scheduler_bound_beyond_loopback_without_tls_is_refused_and_closed",
)
def exposure_after_start(tmp: Path) -> Row:
    """A scheduler found listening beyond loopback without TLS once started (bound by
    anything the options do not show)."""
    from distributed import LocalCluster

    from espnet3.errors import SetupError
    from espnet3.parallel import ParallelConfig
    from espnet3.parallel.security import check_exposure

    cluster = LocalCluster(n_workers=0, host="0.0.0.0", dashboard_address=None)
    with Clock() as clock:
        err = refused(
            lambda: check_exposure(cluster, ParallelConfig.from_any({"env": "local"})), SetupError
        )
    assert cluster.status.name == "closed"
    return Row(f"refused and closed: {first_line(err)[:90]}...", f"{clock.s:.2f}")


LAUGHS = """
import resource, sys
from espnet3.errors import ConfigError
from espnet3.utils.config_files import load_config_with_defaults
try:
    load_config_with_defaults(sys.argv[1])
except ConfigError as err:
    print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024, err, sep="\t")
"""


@case(
    "S4",
    "tests/utils/test_config_files.py::test_a_billion_laughs_config_is_refused_before_it_is_expanded",
)
def billion_laughs(tmp: Path) -> Row:
    """A 750-byte config of nested YAML aliases that stands for 10^9 values."""
    rows = ['lol0: &lol0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    rows += [f"lol{k}: &lol{k} [" + ", ".join([f"*lol{k - 1}"] * 10) + "]" for k in range(1, 9)]
    bomb = tmp / "bomb.yaml"
    bomb.write_text("\n".join(rows) + "\n")
    with Clock() as clock:
        done = subprocess.run(
            [sys.executable, "-c", LAUGHS, str(bomb)], capture_output=True, text=True, timeout=600
        )
    peak, _, message = done.stdout.strip().partition("\t")
    assert message and "aliases are expanded" in message, (done.stdout, done.stderr)
    return Row(
        f"refused before expansion ({bomb.stat().st_size} bytes): '{message[-90:]}'; the "
        f"process peaked at {peak} MB",
        f"{clock.s:.2f} (whole process)",
    )


def _extract_refused(archive: Path, work: Path) -> tuple[float, str]:
    from espnet3.utils.archive import UnsafeArchiveError, extract_archive

    with Clock() as clock:
        err = refused(lambda: extract_archive(archive, work / "out"), UnsafeArchiveError)
    assert tree(work) == [], f"{archive.name} left {tree(work)}"
    return clock.s, first_line(err)


#: Member orders of the link-ordering attack tried (indices into ``ESCAPE``).
ORDERS = [(0, 1, 2), (2, 1, 0), (1, 2, 0), (1, 2), (2, 1)]


@case(
    "S2a",
    "tests/utils/test_archive.py::test_links_that_escape_through_other_links_are_refused_in_any_order",
)
def archive_link_order(tmp: Path) -> Row:
    """Tar link-ordering attack: file `a/b`, symlink `c -> a/b/..`, symlink `a/b -> ..`, in
    five member orders."""
    worst = 0.0
    for k, order in enumerate(ORDERS):
        work = tmp / f"w{k}"
        work.mkdir()
        archive = make_tar(tmp / f"o{k}.tar", [ESCAPE[i] for i in order])
        seconds, _ = _extract_refused(archive, work)
        worst = max(worst, seconds)
    outside = sorted(p.name for p in tmp.iterdir() if not p.name.startswith(("w", "o")))
    assert outside == []
    return Row(
        f"refused in {len(ORDERS)} of {len(ORDERS)} orders before anything is written; "
        "nothing outside the target",
        f"{worst:.3f} (slowest)",
        lost="0 files written",
    )


@case(
    "S2b",
    "tests/utils/test_archive.py::test_a_python_without_the_data_filter_extracts_by_the_same_rules",
)
def archive_no_filter(tmp: Path) -> Row:
    """Extraction on a Python without `tarfile.data_filter` (3.10.0-3.10.11, 3.11.0-3.11.3,
    Debian bookworm's 3.11.2), simulated by removing it: the link-order attack in five orders,
    then an archive with a setuid, world-writable member."""
    from espnet3.utils.archive import UnsafeArchiveError, extract_archive

    saved = tarfile.data_filter
    del tarfile.data_filter
    try:
        refusals = 0
        for i, order in enumerate(ORDERS):
            archive = make_tar(tmp / f"evil{i}.tar", [ESCAPE[j] for j in order])
            refused(lambda a=archive: extract_archive(a, tmp / "evil"), UnsafeArchiveError)
            refusals += not (tmp / "evil").exists()
        setuid = file_member("good/run.sh")
        setuid.mode = 0o6777
        with Clock() as clock:
            out = extract_archive(make_tar(tmp / "ok.tar", [setuid]), tmp / "out")
    finally:
        tarfile.data_filter = saved
    mode = stat.S_IMODE((out / "good" / "run.sh").stat().st_mode)
    assert refusals == len(ORDERS) and mode == 0o755
    return Row(
        f"the attack refused in {refusals} of {len(ORDERS)} orders; the good archive extracts, "
        f"its 6777 member written {mode:o} (the data filter's rules, applied by espnet3)",
        f"{clock.s:.3f} (good archive)",
        lost="0 files written outside",
    )


@case("S2c", "tests/utils/test_archive.py::test_malicious_tar_is_rejected_and_writes_nothing")
def archive_classic(tmp: Path) -> Row:
    """Tar members `../evil`, `a/../../evil`, `/tmp/evil-abs`, symlinks and hard links to
    `../..` and `/etc/passwd`, a member under a symlink, a FIFO; zip `../evil` and a zip
    symlink."""
    s, h = tarfile.SYMTYPE, tarfile.LNKTYPE
    members = [
        [file_member("../evil")],
        [file_member("a/../../evil")],
        [file_member("/tmp/evil-abs")],
        [link_member("s", "../../evil", s)],
        [link_member("s", "/etc/passwd", s)],
        [link_member("d/s", "../..", s)],
        [link_member("h", "../evil", h)],
        [link_member("h", "/etc/passwd", h)],
        [link_member("s", "good", s), file_member("s/evil")],
        [link_member("fifo", "", tarfile.FIFOTYPE)],
    ]
    archives = [make_tar(tmp / f"t{k}.tar", m) for k, m in enumerate(members)]
    with zipfile.ZipFile(tmp / "z0.zip", "w") as zf:
        zf.writestr("../evil.txt", "evil")
    info = zipfile.ZipInfo("s")
    info.external_attr = 0o120777 << 16
    with zipfile.ZipFile(tmp / "z1.zip", "w") as zf:
        zf.writestr(info, "/etc/passwd")
    archives += [tmp / "z0.zip", tmp / "z1.zip"]
    worst = 0.0
    for k, archive in enumerate(archives):
        work = tmp / f"work{k}"
        work.mkdir()
        worst = max(worst, _extract_refused(archive, work)[0])
    assert not Path("/tmp/evil-abs").exists() and not (tmp.parent / "evil").exists()
    return Row(
        f"{len(archives)} of {len(archives)} archives refused, nothing extracted",
        f"{worst:.3f} (slowest)",
        lost="0 files written",
    )


class _Planted:
    """Unpickling this creates ``path``: the proof that something unpickled it."""

    def __init__(self, path: Path):
        self.path = path

    def __reduce__(self):
        return (Path.touch, (self.path,))


@case(
    "S3",
    "tests/runner/test_async_local.py::test_pickles_planted_in_the_shared_directories_are_never_unpickled",
)
def planted_pickle(tmp: Path) -> Row:
    """A pickle planted in a shared specs directory as a shard spec, and in the shards root as
    a results file and as a `done` marker."""
    from runner_toys import ToyProvider, ToyRunner

    from espnet3.parallel import set_parallel
    from espnet3.runner.jobs_dir import collect, status

    marker = tmp / "unpickled"
    payload = pickle.dumps(_Planted(marker))
    set_parallel(LOCAL)
    try:
        runner = ToyRunner(
            ToyProvider(TOY_CFG),
            async_mode=True,
            async_specs_dir=tmp / "specs",
            async_result_dir=tmp / "results",
            async_shard_size=5,
        )
        submission = runner(range(10))
        submission.wait(timeout=300, poll=0.2)
    finally:
        set_parallel(None)
    spec = Path(submission[0]["spec"])  # <specs>/<call>/split.0.spec.json
    original = spec.read_bytes()
    spec.write_bytes(payload)
    with Clock() as clock:
        job = subprocess.run(
            [sys.executable, "-m", "espnet3.runner.shard", str(spec)],
            capture_output=True,
            text=True,
            timeout=120,
        )
    spec_says = job.stderr.strip().splitlines()[-1] if job.stderr.strip() else ""
    spec.write_bytes(original)
    # The pickle padded to the size `done` records (pickle ignores what follows its STOP), so
    # collect takes split.1 as done and really reads the planted file.
    results = Path(submission[1]["result"])  # <results>/<call>/split.1/results.jsonl
    size = results.stat().st_size
    assert len(payload) < size, (len(payload), size)
    results.write_bytes(payload + b" " * (size - len(payload)))
    err = refused(lambda: list(collect(tmp / "specs")), Exception)
    (Path(submission[0]["shard_dir"]) / "done").write_bytes(payload)
    state = status(tmp / "specs")[0].state
    assert job.returncode != 0 and str(spec) in job.stderr, (job.returncode, job.stderr)
    assert state != "done" and not marker.exists(), state
    return Row(
        f"never unpickled (specs, results and done are JSON): the shard job exits "
        f"{job.returncode} ({spec_says.replace(str(tmp), '$TMP')[:70]}...); collect refuses "
        f"({type(err).__name__}: {first_line(err)[:50]}...); the shard with the planted done "
        f"is '{state}', not done",
        f"{clock.s:.1f} (shard job)",
    )


# --- data loss and silent corruption --------------------------------------------------------


def _wav_bytes(tmp: Path, seed: int, name: str) -> tuple[bytes, list[int]]:
    import numpy as np
    import soundfile as sf

    samples = np.random.default_rng(seed).integers(-9000, 9000, 8000, dtype=np.int16)
    sf.write(tmp / name, samples, 16000, subtype="PCM_16")
    return (tmp / name).read_bytes(), samples.tolist()


@case(
    "D1",
    "tests/data/test_hf_to_lhotse.py::test_ids_that_differ_only_in_unsafe_characters_get_their_own_files",
)
def audio_dir_collision(tmp: Path) -> Row:
    """`cutset_from_huggingface(..., audio_dir=...)` on ids `spk/utt1` and `spk_utt1`."""
    import datasets
    import numpy as np

    from espnet3.data.huggingface_utils import cutset_from_huggingface

    rows = {"spk/utt1": _wav_bytes(tmp, 1, "a.wav"), "spk_utt1": _wav_bytes(tmp, 2, "b.wav")}
    dataset = datasets.Dataset.from_dict(
        {
            "audio": [{"bytes": b, "path": None} for b, _ in rows.values()],
            "text": ["one", "two"],
            "utt": list(rows),
        }
    ).cast_column("audio", datasets.Audio(decode=False))
    info = {"audio": "audio", "text": "text", "id": "utt"}
    with Clock() as clock:
        cuts = cutset_from_huggingface(info, None, dataset, "t", audio_dir=tmp / "audio")
    files = {cut.recording.sources[0].source for cut in cuts}
    wrong = sum(
        not np.array_equal(np.rint(cut.load_audio()[0] * 32768).astype(np.int16), rows[cut.id][1])
        for cut in cuts
    )
    assert len(files) == 2 and wrong == 0
    return Row(
        f"{len(files)} files ({', '.join(sorted(Path(f).name for f in files))}); each cut "
        "holds its own row's samples",
        f"{clock.s:.2f}",
        lost=f"{wrong} cuts with wrong audio",
    )


def _async(tmp: Path, params=None, cls_name: str = "ToyRunner", **kwargs):
    import runner_toys

    return getattr(runner_toys, cls_name)(
        runner_toys.ToyProvider(TOY_CFG, params),
        async_mode=True,
        async_specs_dir=tmp / "specs",
        async_result_dir=tmp / "results",
        **kwargs,
    )


@contextlib.contextmanager
def _parallel(config):
    from espnet3.parallel import set_parallel

    set_parallel(config)
    try:
        yield
    finally:
        set_parallel(None)


def _cli_collect(specs: Path) -> list[int]:
    out = subprocess.run(
        [sys.executable, "-m", "espnet3", "jobs", "collect", str(specs)],
        capture_output=True,
        text=True,
        check=True,
    )
    return [json.loads(line)["index"] for line in out.stdout.splitlines()]


def _reshard_row(tmp: Path, config: dict) -> Row:
    from espnet3.runner.jobs_dir import status, summarize

    with _parallel(config):
        first = _async(tmp, async_shard_size=6)(range(24))
        first.wait(timeout=600, poll=0.2)
        with Clock() as clock:
            again = _async(tmp, async_shard_size=4)(range(24))
            again.wait(timeout=600, poll=0.2)
            third = _async(tmp, async_shard_size=7)(range(30))
            third.wait(timeout=600, poll=0.2)
    indices = _cli_collect(tmp / "specs")
    lost, dup = count_lost_and_duplicated(indices, list(range(30)))
    shown = summarize(status(tmp / "specs"))
    assert lost == dup == 0 and len(again.submitted) == 0 and shown == f"{len(third.shards)} done"
    return Row(
        f"shard sizes 6, 4, 7 over 24, 24, 30 items: the second call runs no shard, the third "
        f"only the {len(third.submitted)} holding new items; `espnet3 jobs collect` gives "
        f"{len(indices)} indices; status says '{shown}'",
        f"{clock.s:.1f} (2nd and 3rd calls)",
        lost=str(lost),
        duplicated=str(dup),
    )


@case(
    "D2",
    "tests/runner/test_async_local.py::test_a_rerun_with_another_shard_size_reuses_results_and_never_doubles_them",
)
def reshard_local(tmp: Path) -> Row:
    """The same async runner call again with another shard size (`env: local`)."""
    return _reshard_row(tmp, LOCAL)


@case(
    "D3",
    "tests/data/test_espnet3_dataset.py::test_a_corrupt_wav_header_is_refused_naming_index_and_utt_id",
)
def zero_channel_wav(tmp: Path) -> Row:
    """WAV bytes whose header says 0 channels, given to `cutset_from_huggingface` and to
    `ESPnet3Dataset`."""
    import struct

    import datasets

    from espnet3.data.dataset import ESPnet3Dataset
    from espnet3.data.huggingface_utils import cutset_from_huggingface
    from espnet3.errors import ItemError

    good, _ = _wav_bytes(tmp, 3, "good.wav")
    bad = bytearray(good)
    struct.pack_into("<H", bad, bad.find(b"fmt ") + 10, 0)
    dataset = datasets.Dataset.from_dict(
        {
            "audio": [{"bytes": good, "path": None}, {"bytes": bytes(bad), "path": None}],
            "text": ["a", "b"],
            "utt": ["ok0", "zero1"],
        }
    ).cast_column("audio", datasets.Audio(decode=False))
    info = {"audio": "audio", "text": "text", "id": "utt"}
    with Clock() as clock:
        err = refused(
            lambda: cutset_from_huggingface(info, None, dataset, "t", audio_dir=tmp / "a"),
            ItemError,
        )
    item_err = refused(lambda: ESPnet3Dataset(dataset, data_info=info)[1], ItemError)
    assert "zero1" in str(err) and "zero1" in str(item_err) and "BytesIO" not in str(item_err)
    return Row(
        f"refused: '{first_line(err)[:70]}...'; the dataset says '{first_line(item_err)[:50]}...'",
        f"{clock.s:.2f}",
        lost="0 bad cuts written",
    )


@case(
    "D7",
    "tests/data/test_hf_to_lhotse.py::test_non_finite_samples_are_refused_or_recorded_never_written",
)
def non_finite_audio(tmp: Path) -> Row:
    """A row whose samples hold NaN and inf, given to `cutset_from_huggingface` (raise, then
    skip) and to `ESPnet3Dataset`."""
    import datasets
    import numpy as np

    from espnet3.data.dataset import ESPnet3Dataset
    from espnet3.data.huggingface_utils import cutset_from_huggingface
    from espnet3.errors import ItemError

    good = (np.sin(np.linspace(0, 60, 1600)) * 0.3).astype(np.float32)
    bad = good.copy()
    bad[[5, 9]] = [np.nan, np.inf]
    dataset = datasets.Dataset.from_dict(
        {
            "audio": [{"array": a, "sampling_rate": 16000} for a in (good, bad)],
            "text": ["a", "b"],
            "utt": ["ok0", "nan1"],
        }
    )
    info = {"audio": "audio", "text": "text", "id": "utt"}
    with Clock() as clock:
        err = refused(
            lambda: cutset_from_huggingface(info, None, dataset, "t", audio_dir=tmp / "a"),
            ItemError,
        )
    skipped = cutset_from_huggingface(
        info, None, dataset, "t", audio_dir=tmp / "b", on_error="skip",
        errors_path=tmp / "errors.jsonl",
    )  # fmt: skip
    item_err = refused(lambda: ESPnet3Dataset(dataset, data_info=info)[1], ItemError)
    written = [p for p in (tmp / "b").rglob("*") if "nan1" in p.name]
    assert "nan1" in str(err) and "nan1" in str(item_err) and list(skipped.ids) == ["ok0"]
    assert not written and "nan1" in (tmp / "errors.jsonl").read_text()
    return Row(
        f"refused: '{first_line(err)[:80]}...'; skip records it in errors.jsonl and writes "
        f"no audio for it; the dataset says '{first_line(item_err)[:50]}...'",
        f"{clock.s:.2f}",
        lost="0 bad samples written",
    )


@contextlib.contextmanager
def _file_server(versions: list[bytes], cut_after: int):
    """A loopback HTTP server with ETag, Range and If-Range, as file servers have: it serves
    ``versions[0]`` (the first answer cut after ``cut_after`` bytes) until told otherwise."""
    import hashlib
    import http.server
    import threading

    state = {"payload": versions[0], "cut": cut_after, "requests": []}

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            payload = state["payload"]
            etag = f'"{hashlib.sha256(payload).hexdigest()[:16]}"'
            asked = self.headers.get("Range")
            state["requests"].append((asked, self.headers.get("If-Range")))
            if asked and self.headers.get("If-Range") not in (None, etag):
                asked = None
            start = int(asked.removeprefix("bytes=").rstrip("-")) if asked else 0
            if start >= len(payload):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(payload)}")
                self.end_headers()
                return
            body = payload[start:]
            self.send_response(206 if asked else 200)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("ETag", etag)
            if asked:
                self.send_header(
                    "Content-Range", f"bytes {start}-{len(payload) - 1}/{len(payload)}"
                )
            self.end_headers()
            if state["cut"]:
                self.wfile.write(body[: state["cut"]])
                state["cut"] = 0
                self.close_connection = True
                return
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/file", state
    finally:
        httpd.shutdown()
        httpd.server_close()


@case("D8", "tests/utils/test_download.py::test_a_part_of_another_version_is_never_spliced")
def download_new_version(tmp: Path) -> Row:
    """A download cut at 600 kB; the server then has a new, shorter version of the file; the
    download runs again without a checksum (`sha256=None`, which `download()` allows)."""
    from espnet3.errors import Espnet3Error
    from espnet3.utils.download import download

    old, new = bytes(range(256)) * 4000, bytes(range(255, -1, -1)) * 2000
    with _file_server([old], cut_after=600_000) as (url, state):
        refused(lambda: download(url, tmp / "f.bin", retries=0), Espnet3Error)
        kept = (tmp / ".f.bin.part").stat().st_size
        state["payload"] = new
        with Clock() as clock:
            got = download(url, tmp / "f.bin").read_bytes()
    left = sorted(p.name for p in tmp.iterdir())
    assert got == new and left == ["f.bin"]
    asked, if_range = state["requests"][1]
    return Row(
        f"{kept} bytes of the old version kept; the resume asked `Range: {asked}` with "
        f"`If-Range: {if_range}`, the server sent the new version whole, which replaced the "
        f"part: {len(got)} bytes, the new version exactly; {len(left) - 1} other files left",
        f"{clock.s:.2f}",
        lost="0 spliced bytes",
    )


def _wait_for(predicate: Callable[[], object], seconds: float = 120.0, poll: float = 0.05):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(poll)
    raise AssertionError(f"waited {seconds:.0f} s for {predicate}")


def _pid_alive(pid: int) -> bool:
    """Whether process ``pid`` still runs (a zombie does not: its command line is empty)."""
    try:
        return bool(Path(f"/proc/{pid}/cmdline").read_bytes())
    except OSError:
        return False


def _processes_left(submissions) -> int:
    """How many shard processes and local launchers of ``submissions`` still run, once they had
    up to a minute to exit after their shards were done."""
    from espnet3.runner.shard_spec import read_record

    pids = set()
    for submission in submissions:
        for k in range(len(submission)):
            record = read_record(submission.files.job_record(k)) or {}
            pids |= {int(record[key]) for key in ("job_id", "launcher") if record.get(key)}
    with contextlib.suppress(AssertionError):
        _wait_for(lambda: not any(_pid_alive(pid) for pid in pids), 60, 0.2)
    return sum(_pid_alive(pid) for pid in pids)


@case("D4", "tests/runner/test_async_local.py::test_resume_resubmits_only_the_killed_shard")
def killed_shard(tmp: Path) -> Row:
    """A shard process killed (SIGKILL) while writing its results, then the same call again."""
    from espnet3.errors import IncompleteError
    from espnet3.runner.jobs_dir import status
    from espnet3.runner.shard_dir import holder
    from espnet3.runner.shard_spec import read_record

    with _parallel(LOCAL):
        submission = _async(tmp, {"sleep": 0.3}, async_shard_size=8, async_max_running=2)(range(32))
        victim, shard = submission.shards[0], Path(submission[0]["shard_dir"])
        # The shard process holds split.0/lock (its pid inside) and writes a .tmp beside it.
        owner = _wait_for(lambda: holder(shard))
        _wait_for(lambda: list(shard.glob(".results.jsonl.*.tmp")))
        record = read_record(submission.files.job_record(0)) or {}
        assert str(owner["pid"]) == record.get("job_id"), (owner, record)
        os.kill(owner["pid"], signal.SIGKILL)
        with Clock() as noticed:
            _wait_for(lambda: status(tmp / "specs")[0].state == "failed")
        left = [p.name for p in shard.iterdir()]  # what the kill left
        gone = holder(shard) is None and "lock" in left  # a stale lock, known as such
        detail = said(status(tmp / "specs")[0].detail, tmp)
        submission.wait(timeout=600, poll=0.2)
        err = refused(lambda: list(submission.collect()), IncompleteError)
        resumed = _async(tmp, {"sleep": 0.3}, async_shard_size=8, async_max_running=2)(range(32))
        resumed.wait(timeout=600, poll=0.2)
    indices = [i for i, _ in resumed.collect()]
    lost, dup = count_lost_and_duplicated(indices, list(range(32)))
    temps = list((tmp / "results").rglob("*.tmp"))
    locks = list((tmp / "results").rglob("lock"))
    jobs_left = _processes_left([submission, resumed])
    assert gone and any(n.endswith(".tmp") for n in left), left
    assert f"{victim} failed" in str(err) and "ended without complete results" in detail
    assert resumed.submitted == [victim] and lost == dup == 0 and not temps and not locks
    return Row(
        f"the dead holder's lock is seen as stale; shown failed ('{detail}'), collect refuses "
        f"('{said(str(err), tmp)}'); "
        f"the rerun resubmits that shard alone (1 of {len(submission.shards)}), takes its lock "
        f"over and removes its .tmp files ({len(temps)} .tmp, {len(locks)} locks left)",
        f"{noticed.s:.1f} (kill to failed)",
        jobs_left=str(jobs_left),
        lost=str(lost),
        duplicated=str(dup),
    )


CONVERT_SCRIPT = """
import sys, time
from espnet3.data.hf_to_lhotse import cutset_from_huggingface

def text(row):
    time.sleep(0.003)
    return row["text"]

cuts = cutset_from_huggingface(
    {"audio": "audio", "text": text}, None, sys.argv[1], None,
    manifest_dir=sys.argv[2], rows_per_chunk=10,
)
print(sum(1 for _ in cuts))
"""


@case(
    "D11",
    "tests/data/test_manifest_parts.py::test_a_killed_conversion_resumes_from_its_whole_parts",
)
def killed_conversion(tmp: Path) -> Row:
    """`cutset_from_huggingface(..., manifest_dir=...)` over 600 rows, killed (SIGKILL) once
    three of its 60 parts are in place, then the same call again."""
    from lhotse import CutSet

    from benchmarks.bench_scale import make_dataset

    rows = make_dataset(600, tmp / "rows")
    script = tmp / "convert.py"
    script.write_text(CONVERT_SCRIPT)
    target, parts = tmp / "m", tmp / "m" / "parts"
    command = [sys.executable, str(script), str(rows), str(target)]
    victim = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _wait_for(lambda: len(list(parts.glob("cuts.*.json"))) >= 3)
    victim.send_signal(signal.SIGKILL)
    victim.wait()
    kept = {p.name: p.stat().st_mtime_ns for p in parts.glob("cuts.*.json")}
    with Clock() as clock:
        again = subprocess.run(command, capture_output=True, text=True)
    assert again.returncode == 0, again.stderr
    untouched = sum(parts.joinpath(n).stat().st_mtime_ns == t for n, t in kept.items())
    ids = [int(c.id) for c in CutSet.from_jsonl_lazy(target / "cuts.jsonl.gz")]
    lost, dup = count_lost_and_duplicated(ids, list(range(600)))
    assert untouched == len(kept) and lost == dup == 0
    return Row(
        f"the {len(kept)} parts written before the kill are kept as they are and the other "
        f"{60 - len(kept)} converted; cuts.jsonl.gz is written once, at the end",
        f"{clock.s:.1f} (rerun)",
        lost=str(lost),
        duplicated=str(dup),
    )


@case("D5", "tests/runner/test_async_local.py::test_truncated_results_are_never_complete")
def truncated_results(tmp: Path) -> Row:
    """A finished shard's results file loses a line in the middle (its `done` records the
    file's size)."""
    from espnet3.errors import IncompleteError
    from espnet3.runner.jobs_dir import collect, status

    with _parallel(LOCAL):
        submission = _async(tmp, async_shard_size=10)(range(20))
        submission.wait(timeout=300, poll=0.2)
        # split.N/done is written before its process exits: until then the damaged shard
        # would be shown running (its job is alive), which is not the hazard measured here.
        _processes_left([submission])
        first = Path(submission[0]["result"])
        lines = first.read_text().splitlines(keepends=True)
        first.write_text("".join(lines[:3] + lines[4:]))
        state = status(tmp / "specs")[0]
        err = refused(lambda: list(collect(tmp / "specs")), IncompleteError)
        with Clock() as clock:
            again = _async(tmp, async_shard_size=10)(range(20))
            again.wait(timeout=300, poll=0.2)
    got = [r for _, r in again.collect()]
    lost, dup = count_lost_and_duplicated([r["idx"] for r in got], list(range(20)))
    assert state.state == "failed" and f"{submission.shards[0]} failed" in str(err)
    assert again.submitted == [submission.shards[0]] and got == expected(range(20))
    return Row(
        f"no longer done: status says failed ('{said(state.detail, tmp)}'); collect refuses "
        f"('{said(str(err), tmp)}'); the rerun redoes that shard only",
        f"{clock.s:.1f} (rerun)",
        lost=str(lost),
        duplicated=str(dup),
    )


@case(
    "D6",
    "tests/runner/test_async_local.py::test_results_rewritten_to_the_same_size_are_found_by_their_checksum",
)
def same_size_results(tmp: Path) -> Row:
    """A finished shard's results file gets one digit changed: same size, other bytes (its
    `done` records size, time and sha256)."""
    from espnet3.errors import IncompleteError
    from espnet3.runner.jobs_dir import collect, status

    with _parallel(LOCAL):
        submission = _async(tmp, async_shard_size=10)(range(20))
        submission.wait(timeout=300, poll=0.2)
        _processes_left([submission])
        first = Path(submission[0]["result"])
        text = first.read_text()
        first.write_text(text.replace('"y": 7}', '"y": 8}', 1))
        assert len(first.read_text()) == len(text)
        state = status(tmp / "specs")[0]
        err = refused(lambda: list(collect(tmp / "specs")), IncompleteError)
        with Clock() as clock:
            again = _async(tmp, async_shard_size=10)(range(20))
            again.wait(timeout=300, poll=0.2)
    got = [r for _, r in again.collect()]
    lost, dup = count_lost_and_duplicated([r["idx"] for r in got], list(range(20)))
    assert state.state == "failed" and "checksum differs" in state.detail
    assert again.submitted == [submission.shards[0]] and got == expected(range(20))
    return Row(
        f"no longer done: status says failed ('{said(state.detail, tmp)}'); collect refuses "
        f"('{said(str(err), tmp)}'); the rerun redoes that shard only",
        f"{clock.s:.1f} (rerun)",
        lost=str(lost),
        duplicated=str(dup),
    )


@case(
    "D9",
    "tests/runner/test_async_local.py::test_later_calls_never_delete_an_earlier_calls_finished_work",
)
def later_calls_keep_earlier_work(tmp: Path) -> Row:
    """The same async call on indices 0-9, then 10-19, then 5-14, into the same directories;
    then the first submission is collected again."""
    with _parallel(LOCAL):
        first = _async(tmp)(range(10))
        first.wait(timeout=300, poll=0.2)
        second = _async(tmp)(range(10, 20))
        second.wait(timeout=300, poll=0.2)
        with Clock() as clock:
            third = _async(tmp)(range(5, 15))
            third.wait(timeout=300, poll=0.2)
    got = [i for i, _ in first.collect()] + [i for i, _ in second.collect()]
    lost, dup = count_lost_and_duplicated(got, list(range(20)))
    assert [i for i, _ in third.collect()] == list(range(5, 15)) and third.submitted == []
    return Row(
        "every call still collects; the overlapping call submits nothing (its items are "
        "done) and collects 5-14 from the finished shards",
        f"{clock.s:.1f} (third call)",
        lost=str(lost),
        duplicated=str(dup),
    )


@case(
    "D10",
    "tests/recipes/test_mini_an4.py::test_a_run_removes_what_killed_runs_left_and_keeps_a_live_writers_files",
)
def killed_runs_temps(tmp: Path) -> Row:
    """Temporary files a killed run left (a half-extracted corpus, a WAV, an HDF5 file, a
    shard, a CutSet) and one of a live writer, then `espnet3 create-dataset`."""
    import re

    from espnet3.utils.atomic import temp_name

    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True).stdout.strip()  # fmt: skip
    data_dir = tmp / "data"

    def left_by(pid: str, target: Path, directory: bool = False) -> Path:
        path = Path(re.sub(r"-\d+\.tmp$", f"-{pid}.tmp", temp_name(target)))
        path.parent.mkdir(parents=True, exist_ok=True)
        if directory:
            (path / "an4").mkdir(parents=True)
            (path / "an4" / "copy.bin").write_bytes(b"x" * 100_000)
        else:
            path.write_bytes(b"half")
        return path

    killed = [
        left_by(gone, data_dir / "source", directory=True),
        left_by(gone, data_dir / "wav" / "train" / "x.wav"),
        left_by(gone, data_dir / "fbank" / "train" / "00000000.h5"),
        left_by(gone, data_dir / "fbank" / "train" / "shards" / "00000.jsonl.gz"),
        left_by(gone, data_dir / "fbank" / "cuts_train.jsonl.gz"),
    ]
    live = left_by(str(os.getpid()), data_dir / "wav" / "train" / "y.wav")
    with Clock() as clock:
        subprocess.run(_create_dataset_cmd(ARCHIVE, data_dir), cwd=ROOT, check=True,
                       capture_output=True)  # fmt: skip
    left = sorted(p.name for p in data_dir.rglob("*.tmp"))
    assert not any(p.exists() for p in killed) and left == [live.name]
    return Row(
        f"the run removes the {len(killed)} left by the dead process and keeps the live "
        f"writer's ({len(left)} .tmp left)",
        f"{clock.s:.1f} (whole run)",
    )


# --- hangs and error policy -----------------------------------------------------------------


def _hazard(tmp: Path, params: dict, **kwargs):
    from runner_toys import HazardRunner, ToyProvider

    return HazardRunner(ToyProvider(TOY_CFG, params), errors_path=tmp / "errors.jsonl", **kwargs)


def _skipped_row(tmp: Path, params: dict, bad: int, n: int, config=LOCAL, **kwargs) -> Row:
    from espnet3.parallel import get_client

    runner = _hazard(tmp, params, on_error="skip", **kwargs)
    with get_client(config), Clock() as clock:
        results = runner(range(n))
    records = [json.loads(line) for line in (tmp / "errors.jsonl").read_text().splitlines()]
    lost, dup = count_lost_and_duplicated([r["idx"] for r in results], list(range(n)))
    assert results == expected(range(n), drop=(bad,)) and [r["index"] for r in records] == [bad]
    record = records[0]
    return Row(
        f"{len(results)} of {n} results; item {bad} recorded in errors.jsonl as "
        f"{record['exc_type']} ('{record['message'][:50]}...')",
        f"{clock.s:.1f} (whole run)",
        lost=f"{lost} (besides item {bad})",
        duplicated=str(dup),
    )


@case(
    "H1", "tests/runner/test_isolation.py::test_item_timeout_gives_up_on_an_item_that_never_returns"
)
def hang_with_timeout(tmp: Path) -> Row:
    """A `forward` that never returns, `on_error: skip`, `item_timeout: 3`, 2 local workers."""
    return _skipped_row(tmp, {"hang_on": [3]}, 3, 40, item_timeout=3)


@case("H2", "tests/runner/test_isolation.py::test_a_stalled_item_is_named_in_a_warning")
def stall_warning(tmp: Path) -> Row:
    """An item that runs 75 s among items that take milliseconds, no `item_timeout`."""
    from espnet3.parallel import dask_map, get_client

    class Capture(logging.Handler):
        def __init__(self):
            super().__init__(logging.WARNING)
            self.at: list[tuple[float, str]] = []

        def emit(self, record):
            self.at.append((time.perf_counter(), record.getMessage()))

    handler = Capture()
    logger = logging.getLogger("espnet3.parallel")
    logger.addHandler(handler)
    runner = _hazard(tmp, {"slow_on": [6], "slow_for": 75.0})
    try:
        with get_client(LOCAL), Clock() as clock:
            results = runner(range(40))
    finally:
        logger.removeHandler(handler)
    warnings = [(at - clock.t0, m) for at, m in handler.at if "has run for" in m]
    assert [r["idx"] for r in results] == list(range(40)) and len(warnings) == 1, handler.at
    at, message = warnings[0]
    return Row(
        f"one warning at {at:.0f} s (threshold {dask_map.STALL_SECONDS:.0f} s or "
        f"{dask_map.STALL_FACTOR:.0f}x the usual item): '{message[:70]}...'; all 40 results",
        f"{clock.s:.0f} (whole run)",
        lost="0",
    )


@case(
    "H3",
    "tests/runner/test_isolation.py::test_skip_records_the_item_at_fault_and_finishes_the_rest[worker-killed]",
)
def worker_killed_skip(tmp: Path) -> Row:
    """A `forward` that kills its worker (`os._exit`), `on_error: skip`, 2 local workers."""
    return _skipped_row(tmp, {"crash_on": [7]}, 7, 40)


@case(
    "H4",
    "tests/runner/test_isolation.py::test_skip_records_the_item_at_fault_and_finishes_the_rest[unpicklable-result]",
)
def unpicklable_skip(tmp: Path) -> Row:
    """A `forward` that returns a value that cannot be pickled, `on_error: skip`."""
    return _skipped_row(tmp, {"unpicklable": [7]}, 7, 40)


@case(
    "H5",
    "tests/runner/test_isolation.py::test_raise_names_the_index_and_utt_id_of_an_item_that_kills_its_worker",
)
def worker_killed_raise(tmp: Path) -> Row:
    """A `forward` that kills its worker, `on_error: raise` (the default)."""
    from espnet3.errors import ItemError
    from espnet3.parallel import get_client

    runner = _hazard(tmp, {"crash_on": [5]})
    with get_client(LOCAL), Clock() as clock:
        err = refused(lambda: runner(range(40)), ItemError)
    assert "index 5 (utt_id 'utt005')" in str(err)
    return Row(f"ItemError: '{first_line(err)[:90]}...'", f"{clock.s:.1f} (to the error)")


def _crash_on_4(x: int) -> int:
    if x == 4:
        os._exit(3)
    return x


@case("H6", "tests/runner/test_isolation.py::test_a_map_names_the_item_that_kills_its_worker")
def map_worker_killed(tmp: Path) -> Row:
    """`parallel_map` over 40 items, item 4 kills its worker."""
    from espnet3.errors import ItemError
    from espnet3.parallel import get_client, parallel_map

    with get_client(LOCAL), Clock() as clock:
        err = refused(lambda: parallel_map(_crash_on_4, range(40)), ItemError)
    assert str(err).startswith("item 4 was lost")
    return Row(f"ItemError: '{first_line(err)[:90]}...'", f"{clock.s:.1f} (to the error)")


@case("H7", "tests/parallel/test_mapping.py::test_error_cancels_the_remaining_items")
def error_cancels(tmp: Path) -> Row:
    """One item raises among 2000 items of 10 ms, `on_error: raise`, 2 local workers."""
    from espnet3.parallel import get_client, parallel_map

    ran = tmp / "ran"
    ran.mkdir()
    with get_client(LOCAL), Clock() as clock:
        err = refused(lambda: parallel_map(_touch_or_fail, range(2000), where=str(ran)), Exception)
    time.sleep(1.0)
    n_ran = len(list(ran.iterdir()))
    assert "item 30" in str(err) and n_ran < 2000
    return Row(
        f"{type(err).__name__}: '{first_line(err)[:60]}...'; {n_ran} of 2000 items ran, the rest "
        "were cancelled",
        f"{clock.s:.1f} (to the error)",
    )


def _touch_or_fail(x: int, where: str) -> int:
    if x == 30:
        raise ValueError(f"item {x} is bad")
    spin_item(x, 0.01)
    Path(where, str(x)).touch()
    return x


@case(
    "H8",
    "tests/runner/test_isolation.py::test_a_worker_killed_from_outside_mid_map_loses_no_result",
)
def worker_sigkilled(tmp: Path) -> Row:
    """A local worker process killed from outside (SIGKILL) in the middle of a map."""
    from espnet3.parallel import get_client, parallel_map

    with get_client(LOCAL) as client:
        pids = list(client.run(os.getpid).values())
        threading.Timer(2.0, os.kill, (pids[0], signal.SIGKILL)).start()
        with Clock() as clock:
            results = parallel_map(spin_item, range(600), client, cost=0.01)
        after = list(client.run(os.getpid).values())
    lost, dup = count_lost_and_duplicated(results, list(range(600)))
    assert results == list(range(600)) and pids[0] not in after
    return Row(
        f"the worker is replaced; its unfinished chunk runs again; all 600 results in order "
        f"({len(after)} workers after)",
        f"{clock.s:.1f} (whole run, 3 s of CPU per worker)",
        lost=str(lost),
        duplicated=str(dup),
    )


# --- interrupts and friction ----------------------------------------------------------------


def _create_dataset_cmd(archive: Path, data_dir: Path, *extra: str) -> list[str]:
    return [
        sys.executable, "-m", "espnet3", "create-dataset", str(RECIPE), *extra,
        f"create_dataset.archive={archive}", "create_dataset.sha256=null",
        f"data_dir={data_dir}", "stages.0.args.shard_size=10",
    ]  # fmt: skip


def _interrupt(cmd: list[str], shards: Path, group: bool) -> tuple[float, int, list[str]]:
    """Start ``cmd``; SIGINT once 2 shards are finished (their counts file, written last, is
    in place); seconds to exit, exit code, stderr lines."""
    proc = subprocess.Popen(
        cmd, cwd=ROOT, stderr=subprocess.PIPE, text=True, start_new_session=group
    )
    _wait_for(lambda: proc.poll() is not None or len(list(shards.glob("*.counts.json"))) >= 2, 600)
    t0 = time.perf_counter()
    if group:
        os.killpg(proc.pid, signal.SIGINT)
    else:
        proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=120)
    return time.perf_counter() - t0, proc.returncode, stderr.splitlines()


def _finished_shards(shards: Path) -> list[Path]:
    """The files of the feature shards whose counts file (written last) is in place."""
    done = {p.name.split(".")[0] for p in shards.glob("*.counts.json")} if shards.is_dir() else ()
    return [p for p in shards.glob("[0-9]*") if p.name.split(".")[0] in done]


@case(
    "F4",
    "tests/recipes/test_mini_an4.py::test_damaged_outputs_are_named_then_rebuilt_by_the_next_run",
)
def damaged_outputs(tmp: Path) -> Row:
    """After a finished mini AN4 run: `cuts_train.jsonl.gz` cut in half, one feature `.h5`
    and one WAV truncated, `fbank/settings.json` garbled; `espnet3 describe`, then the same
    create-dataset command again."""
    data_dir = tmp / "data"
    cmd = _create_dataset_cmd(ARCHIVE, data_dir)
    subprocess.run(cmd, cwd=ROOT, check=True, capture_output=True)
    cuts = data_dir / "fbank" / "cuts_train.jsonl.gz"
    good_cuts = cuts.read_bytes()
    cuts.write_bytes(good_cuts[: len(good_cuts) // 2])
    h5 = sorted((data_dir / "fbank" / "train").glob("*.h5"))[0]
    good_h5 = h5.read_bytes()
    os.truncate(h5, len(good_h5) // 2)
    wav = sorted((data_dir / "wav" / "test").glob("*.wav"))[0]
    good_wav = wav.read_bytes()
    os.truncate(wav, len(good_wav) - 1000)
    (data_dir / "fbank" / "settings.json").write_text('{"num_mel_bins": 8')
    described = subprocess.run(
        [sys.executable, "-m", "espnet3", "describe", str(data_dir / "fbank")],
        cwd=ROOT, capture_output=True, text=True,
    )  # fmt: skip
    said_lines = described.stderr.strip().splitlines()
    with Clock() as clock:
        subprocess.run(cmd, cwd=ROOT, check=True, capture_output=True)
    rebuilt = [cuts.read_bytes() == good_cuts, h5.read_bytes() == good_h5]
    rebuilt.append(wav.read_bytes() == good_wav)
    assert described.returncode != 0 and len(said_lines) == 1 and all(rebuilt), said_lines
    return Row(
        f"describe says one line ('{said(said_lines[0], tmp)[:90]}...'); the rerun rebuilds "
        "the three files byte for byte and settings.json from summary.json",
        f"{clock.s:.1f} (rerun)",
        lost="0",
    )


@case(
    "F5",
    "tests/recipes/test_mini_an4.py::test_a_full_disk_while_writing_wavs_names_the_errno_and_the_file",
)
def full_disk_wavs(tmp: Path) -> Row:
    """`espnet3 create-dataset` with its data directory on a 1000 KB tmpfs: the extracted
    corpus fits, the WAVs do not (root only: it mounts the tmpfs)."""
    disk = tmp / "disk"
    disk.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1000k", "tmpfs", str(disk)], check=True)
    try:
        with Clock() as clock:
            done = subprocess.run(
                _create_dataset_cmd(ARCHIVE, disk / "data"),
                cwd=ROOT,
                capture_output=True,
                text=True,
            )
        lines = done.stderr.strip().splitlines()
        temps = [p for p in disk.rglob("*.tmp")]
        wavs = [p for p in disk.rglob("*.wav")]
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=False)
    assert done.returncode != 0 and len(lines) == 1 and "Errno 28" in lines[0], lines
    assert ".wav" in lines[0] and not temps
    return Row(
        f"exit {done.returncode}, one line: '{said(lines[0], tmp)[:150]}...'; {len(wavs)} "
        f"whole WAVs kept, {len(temps)} temporary files left",
        f"{clock.s:.1f} (to the error)",
        lost="0 (the rerun on a bigger disk goes on from the WAVs written)",
    )


@case(
    "F6",
    "tests/runner/test_async_local.py::test_a_read_only_results_directory_is_one_error_naming_the_setting",
)
def read_only_results(tmp: Path) -> Row:
    """An async call whose `async_result_dir` is a read-only filesystem (a tmpfs mounted
    `ro`; root only)."""
    from espnet3.errors import SetupError

    results = tmp / "results"
    results.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", str(results)], check=True)
    try:
        with _parallel(LOCAL), Clock() as clock:
            err = refused(lambda: _async(tmp)(range(10)), SetupError)  # results: tmp/results
        written = list(results.rglob("*"))
    finally:
        subprocess.run(["umount", "-l", str(results)], check=False)
    assert "Read-only file system" in str(err) and "async_result_dir" in str(err)
    return Row(
        f"one error: '{said(first_line(err), tmp)[:140]}...'; {len(written)} files written",
        f"{clock.s:.2f}",
        jobs_left="0",
    )


@case(
    "F7",
    "tests/runner/test_async_local.py::test_an_async_call_in_a_get_client_block_uses_that_block",
)
def async_in_block(tmp: Path) -> Row:
    """An async runner called inside `with get_client({"env": "local"})`, no global config."""
    from espnet3.parallel import get_client

    with get_client(LOCAL), Clock() as clock:
        submission = _async(tmp)(range(10))
        states = submission.wait(timeout=300, poll=0.2)
    got = [i for i, _ in submission.collect()]
    lost, dup = count_lost_and_duplicated(got, list(range(10)))
    assert {s.state for s in states} == {"done"}
    return Row(
        f"the shards run on the block's env ({len(states)} shard processes, all done)",
        f"{clock.s:.1f}",
        lost=str(lost),
        duplicated=str(dup),
    )


@case(
    "F8",
    "tests/runner/test_base_runner.py::test_item_timeout_given_per_call_is_checked_like_the_configs",
)
def item_timeout_per_call(tmp: Path) -> Row:
    """`item_timeout=-1` and `item_timeout="x"` given to a runner and to a map."""
    import runner_toys

    from espnet3.errors import ConfigError
    from espnet3.parallel import map_indexed

    def runner_with(bad):
        return lambda: runner_toys.ToyRunner(runner_toys.ToyProvider(TOY_CFG), item_timeout=bad)

    with Clock() as clock:
        said_lines = [first_line(refused(runner_with(bad), ConfigError)) for bad in (-1, "x")]
        mapped = refused(lambda: list(map_indexed(str, [1], item_timeout=-1)), ConfigError)
        said_lines.append(first_line(mapped))
    assert all("positive number of seconds" in line for line in said_lines)
    return Row(f"refused before anything runs: '{said_lines[0]}'", f"{clock.s:.3f}")


@case(
    "F9",
    "tests/parallel/test_schedulers.py::test_dask_config_fallbacks_come_from_the_section_config_name_names",
)
def config_name_fallbacks(tmp: Path) -> Row:
    """`options: {config_name: mycluster}` with walltime and a job-script-prologue only in the
    Dask config's `jobqueue.mycluster` (1 h and another prologue in `jobqueue.slurm`)."""
    import dask
    import dask_jobqueue  # noqa: F401  (loads the jobqueue section of the Dask config)

    from espnet3.parallel import ParallelConfig
    from espnet3.parallel.jobqueue import worker_job_options
    from espnet3.parallel.schedulers import ShardBatch, ShardTask, scheduler_for

    slurm = {**dask.config.get("jobqueue.slurm"), "walltime": "01:00:00",
             "job-script-prologue": ["module load slurm-default"]}  # fmt: skip
    mine = {**slurm, "walltime": "00:20:00", "job-script-prologue": ["module load mycluster"]}
    options = {"cores": 1, "memory": "1GB", "config_name": "mycluster"}
    config = ParallelConfig.from_any({"env": "slurm", "security": "none", "options": options})
    scheduler = scheduler_for("slurm")
    with dask.config.set({"jobqueue.slurm": slurm, "jobqueue.mycluster": mine}):
        _, worker = worker_job_options(config, scheduler, tmp / "logs")
        batch = ShardBatch("ab", [ShardTask("s0", tmp / "s0.spec.json", tmp / "0")],
                           ["python", "-m", "espnet3.runner.shard"], tmp, tmp / "logs", 1)  # fmt: skip
        array = scheduler.array_files(tmp / "a.list", 1, batch, config)[".sh"]
    extra = worker["worker_extra_args"]
    lifetime = extra[extra.index("--lifetime") + 1]
    assert lifetime == "1020s" and "module load mycluster" in array
    return Row(
        f"worker --lifetime {lifetime} (from mycluster's 20 min); the worker script and the "
        "shard array script both run mycluster's prologue",
        "-",
    )


@case("F1", "tests/recipes/test_mini_an4.py::test_ctrl_c_on_local_workers_prints_one_line_quickly")
def ctrl_c_local(tmp: Path) -> Row:
    """Ctrl-C (SIGINT to the process group) during `espnet3 create-dataset` with 2 local
    workers."""
    archive = big_archive(ARCHIVE, tmp / "big.tar", copies=200)
    data_dir = tmp / "data"
    local = ["--config", str(RECIPE / "conf" / "local.yaml"), "+parallel.start=now"]
    cmd = _create_dataset_cmd(archive, data_dir, *local)
    seconds, code, lines = _interrupt(cmd, data_dir / "fbank" / "train" / "shards", group=True)
    *said, last = lines
    assert code == 130 and said, lines  # said: where the work runs, at least
    assert all(line.startswith("espnet3: INFO: ") for line in said), lines
    assert last.startswith("espnet3: interrupted; finished work is kept"), lines
    return Row(
        f"exit 130; {len(said)} INFO line(s) ('{said[0]}' first), then '{last}'",
        f"{seconds:.2f} (to exit)",
    )


@case(
    "F2",
    "tests/recipes/test_mini_an4.py::test_sigint_during_features_then_rerun_completes_without_redoing_shards",
)
def sigint_then_rerun(tmp: Path) -> Row:
    """SIGINT during the feature stage (sequential), then the same command again."""
    archive = big_archive(ARCHIVE, tmp / "big.tar", copies=200)
    data_dir = tmp / "data"
    shards = data_dir / "fbank" / "train" / "shards"
    cmd = _create_dataset_cmd(archive, data_dir)
    seconds, code, _ = _interrupt(cmd, shards, group=False)
    kept = {p: p.stat().st_mtime_ns for p in _finished_shards(shards)}
    subprocess.run(cmd, cwd=ROOT, check=True, capture_output=True)
    redone = sum(p.stat().st_mtime_ns != m for p, m in kept.items())
    import gzip

    with gzip.open(data_dir / "fbank" / "cuts_train.jsonl.gz", "rt") as f:
        ids = [json.loads(line)["id"] for line in f]
    lost, dup = len(set(range(4 + 5 * 200))) - len(set(ids)), len(ids) - len(set(ids))
    assert code == 130 and redone == 0 and lost == dup == 0
    return Row(
        f"exit 130; the rerun keeps the {len(kept) // 2} finished shards ({redone} files "
        "redone) and "
        f"completes {len(ids)} cuts",
        f"{seconds:.2f} (to exit)",
        lost=str(lost),
        duplicated=str(dup),
    )


BAD_CONFIGS = [
    {"env": "slurm", "options": {"cores": "one"}},
    {"env": "slurm", "options": {"memory": 1}},
    {"env": "slurm", "options": {"walltime": "soon"}},
    {"env": "local", "options": {"interface": "nosuch0"}},
    {"env": "slurm", "container": {"image": "/nonexistent/espnet3.sif"}},
]


@case(
    "F3",
    "tests/parallel/test_config.py::test_bad_config_is_rejected_with_a_message_naming_it, tests/parallel/test_slurm.py::test_bad_job_resources_are_config_errors_when_the_config_is_read",
)
def bad_configs(tmp: Path) -> Row:
    """`cores: "one"`, `memory: 1`, `walltime: soon`, `env: local` with an unknown
    `interface`, a missing container image."""
    from espnet3.errors import ConfigError
    from espnet3.parallel import ParallelConfig, get_client

    worst, lines = 0.0, []
    for config in BAD_CONFIGS:
        with Clock() as clock:
            err = refused(
                lambda c=config: get_client(ParallelConfig.from_any(c)).__enter__(), ConfigError
            )
        worst = max(worst, clock.s)
        lines.append(str(err))
    assert all("\n" not in line for line in lines), lines
    return Row(
        f"{len(lines)} of {len(BAD_CONFIGS)} refused when the config is read, one line each, "
        f"e.g. '{lines[0][:60]}'",
        f"{worst:.3f} (slowest)",
        jobs_left="0 submitted",
    )


# --- SLURM ----------------------------------------------------------------------------------


def slurm_config(tmp: Path, **options) -> dict:
    return {
        "env": "slurm",
        "n_workers": 2,
        "min_workers": 2,
        "startup_timeout": 240,
        "log_dir": str(tmp / "jobs"),
        "options": SLURM_OPTIONS | options,
    }


def queued_jobs() -> set[str]:
    """Ids of every job squeue lists (pending, running or completing)."""
    out = subprocess.run(["squeue", "-h", "-o", "%i"], capture_output=True, text=True, check=True)
    return set(out.stdout.split())


def active_jobs(job_ids) -> set[str]:
    return queued_jobs() & {str(j) for j in job_ids}


def _gone(job_ids, seconds: float = 60.0) -> tuple[float, set[str]]:
    """Seconds until none of ``job_ids`` is in squeue (or ``seconds``), and those left."""
    t0 = time.perf_counter()
    while (left := active_jobs(job_ids)) and time.perf_counter() - t0 < seconds:
        time.sleep(0.2)
    return time.perf_counter() - t0, left


PARENT = """
import os, sys, time
sys.path.insert(0, {root!r})
from espnet3.parallel import get_client, parallel_map

with get_client({config!r}) as client:
    print("JOBS", *sorted(set(client.run(os.getenv, "SLURM_JOB_ID").values())), flush=True)
    parallel_map(time.sleep, [0.5] * 2000, client)
"""


def _killed_parent(tmp: Path, signum: int) -> Row:
    script = tmp / "parent.py"
    script.write_text(textwrap.dedent(PARENT.format(root=str(ROOT), config=slurm_config(tmp))))
    child = subprocess.Popen(
        [sys.executable, str(script)],
        cwd=tmp,
        stdout=subprocess.PIPE,
        text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    try:
        line = child.stdout.readline()
        assert line.startswith("JOBS "), line
        jobs = line.split()[1:]
        time.sleep(2)
        t0 = time.perf_counter()
        child.send_signal(signum)
        child.wait(timeout=60)
        exited = time.perf_counter() - t0
        seconds, left = _gone(jobs)
    finally:
        if child.poll() is None:
            child.kill()
    assert not left
    return Row(
        f"parent exits ({exited:.1f} s, status {child.returncode}); its {len(jobs)} worker "
        "jobs are cancelled",
        f"{exited + seconds:.1f} (signal to no job in squeue)",
        jobs_left=str(len(left)),
    )


@case("K1", "tests/parallel/test_slurm.py::test_killed_parent_leaves_no_job[SIGTERM]", slurm=True)
def parent_sigterm(tmp: Path) -> Row:
    """The parent process gets SIGTERM while its 2 SLURM worker jobs run a map."""
    return _killed_parent(tmp, signal.SIGTERM)


@case("K2", "tests/parallel/test_slurm.py::test_killed_parent_leaves_no_job[SIGINT]", slurm=True)
def parent_sigint(tmp: Path) -> Row:
    """The parent process gets SIGINT (Ctrl-C) while its worker jobs run a map."""
    return _killed_parent(tmp, signal.SIGINT)


@case("K3", "tests/parallel/test_slurm.py::test_cancelled_worker_job_loses_no_result", slurm=True)
def cancelled_worker_job(tmp: Path) -> Row:
    """`scancel` of one of the 2 worker jobs 3 s into a 60-item map."""
    from espnet3.parallel import get_client, parallel_map

    with get_client(slurm_config(tmp)) as client:
        victim = sorted(set(client.run(os.getenv, "SLURM_JOB_ID").values()))[0]
        threading.Timer(3.0, subprocess.run, (["scancel", victim],)).start()
        with Clock() as clock:
            results = parallel_map(spin_item, range(60), client, cost=0.2)
        jobs = set(client.run(os.getenv, "SLURM_JOB_ID").values())
    lost, dup = count_lost_and_duplicated(results, list(range(60)))
    seconds, left = _gone(jobs)
    assert results == list(range(60)) and not left
    return Row(
        "the map finishes on the other worker (and a replacement job); every result once, in "
        "order; exit cancels the jobs",
        f"{clock.s:.1f} (whole map; 6 s of work per worker without the fault)",
        jobs_left=str(len(left)),
        lost=str(lost),
        duplicated=str(dup),
    )


def _start_refused(tmp: Path, error: type[BaseException], **options):
    """``get_client`` on SLURM with ``options``, which must fail with ``error``: the error, the
    seconds it took and the run directories left under the log directory."""
    from espnet3.parallel import get_client

    with Clock() as clock:
        err = refused(lambda: get_client(slurm_config(tmp, **options)).__enter__(), error)
    run_dirs = [p.name for p in (tmp / "jobs").iterdir() if p.name != ".tls"]
    return err, clock.s, run_dirs


@case(
    "K4", "tests/parallel/test_slurm.py::test_a_job_that_can_never_start_fails_at_once", slurm=True
)
def never_starts(tmp: Path) -> Row:
    """Worker jobs asking for 64 cores on a 2-core node (SLURM holds them forever)."""
    from espnet3.errors import Espnet3Error

    before = queued_jobs()
    err, seconds, run_dirs = _start_refused(tmp, Espnet3Error, cores=64)
    _, jobs = _gone(queued_jobs() - before)
    assert "can never start" in str(err) and not run_dirs and not jobs
    return Row(
        f"'{first_line(err)[:80]}...'; no empty run directory",
        f"{seconds:.1f} (to the error)",
        jobs_left=str(len(jobs)),
    )


@case(
    "K5",
    "tests/parallel/test_slurm.py::test_worker_that_cannot_start_fails_naming_its_job_and_log",
    slurm=True,
)
def worker_cannot_start(tmp: Path) -> Row:
    """Worker jobs whose Python does not exist (`options.python: /nonexistent/bin/python`)."""
    from espnet3.parallel.jobs import JobFailedError

    err, seconds, _ = _start_refused(tmp, JobFailedError, python="/nonexistent/bin/python")
    _, left = _gone([err.job.job_id])
    assert "/nonexistent/bin/python" in str(err) and not left
    return Row(
        f"'{first_line(err)[:70]}...', with the job's log tail and path",
        f"{seconds:.1f} (to the error)",
        jobs_left=str(len(left)),
    )


@case(
    "K6",
    "tests/parallel/test_slurm.py::test_bad_partition_surfaces_sbatch_error_verbatim",
    slurm=True,
)
def bad_partition(tmp: Path) -> Row:
    """`options.queue: no-such-partition` (sbatch refuses the job)."""
    from espnet3.errors import Espnet3Error

    err, seconds, run_dirs = _start_refused(tmp, Espnet3Error, queue="no-such-partition")
    assert "invalid partition" in str(err) and not run_dirs
    return Row(
        f"sbatch's own line in the error ('{first_line(err)[:60]}...'); no empty run directory",
        f"{seconds:.1f} (to the error)",
        jobs_left="0",
    )


@case(
    "K7",
    "tests/runner/test_slurm_runner.py::test_async_resume_on_slurm_after_cancelling_one_task",
    True,
)
def cancelled_shard_task(tmp: Path) -> Row:
    """`scancel` of one running task of an async job array, then the same call again."""
    from espnet3.errors import IncompleteError
    from espnet3.runner.jobs_dir import status

    config = {"env": "slurm", "n_workers": 2, "options": SLURM_OPTIONS, "log_dir": str(tmp)}
    with _parallel(config):
        submission = _async(tmp, {"sleep": 0.5}, async_shard_size=8)(range(32))
        victim, job_id = submission.shards[0], submission[0]["job_id"]  # "<array>_0"
        _wait_for(lambda: status(tmp / "specs")[0].state == "running", 300, 0.2)
        subprocess.run(["scancel", job_id], check=True)
        with Clock() as noticed:
            _wait_for(lambda: status(tmp / "specs")[0].state == "failed", 300, 0.2)
        shown = said(status(tmp / "specs")[0].detail, tmp)
        submission.wait(timeout=600, poll=0.5)
        err = refused(lambda: list(submission.collect()), IncompleteError)
        resumed = _async(tmp, {"sleep": 0.5}, async_shard_size=8)(range(32))
        resumed.wait(timeout=600, poll=0.5)
    indices = [i for i, _ in resumed.collect()]
    lost, dup = count_lost_and_duplicated(indices, list(range(32)))
    state = status(tmp / "specs")[0].state
    jobs = [e["job_id"] for e in (*submission, *resumed) if e["job_id"]]
    _, left = _gone(jobs)
    assert "CANCELLED" in shown and f"{victim} failed" in str(err)
    assert resumed.submitted == [victim] and lost == dup == 0 and state == "done" and not left
    return Row(
        f"shown failed ('{shown}'), collect refuses; the rerun resubmits that task alone "
        f"(1 of {len(submission.shards)}); state now '{state}'",
        f"{noticed.s:.1f} (scancel to failed)",
        jobs_left=str(len(left)),
        lost=str(lost),
        duplicated=str(dup),
    )


@case(
    "K8",
    "tests/runner/test_slurm_runner.py::test_an_item_that_kills_its_slurm_worker_is_skipped_and_recorded",
    True,
)
def slurm_worker_killed_skip(tmp: Path) -> Row:
    """A `forward` that kills its SLURM worker, `on_error: skip`, 2 worker jobs."""
    config = {"env": "slurm", "n_workers": 2, "options": SLURM_OPTIONS, "log_dir": str(tmp)}
    return _skipped_row(tmp, {"crash_on": [9]}, 9, 16, config=config)


@case(
    "K9",
    "tests/runner/test_slurm_runner.py::test_a_rerun_with_another_shard_size_on_slurm_never_doubles_results",
    True,
)
def reshard_slurm(tmp: Path) -> Row:
    """The same async call again with another shard size, as SLURM job arrays."""
    return _reshard_row(tmp, {"env": "slurm", "n_workers": 2, "options": SLURM_OPTIONS})


@case(
    "K10",
    "tests/runner/test_slurm_runner.py::test_a_shard_pending_without_a_reason_yet_is_said_to_wait_in_the_queue",
    slurm=True,
)
def pending_reason(tmp: Path) -> Row:
    """A shard submitted while both cores are taken, its status read before the scheduler's
    next pass (squeue's reason is then "None")."""
    from espnet3.runner.jobs_dir import status

    sleeper = ["sbatch", "--parsable", "--mem=100M", "-o", "/dev/null", "--wrap", "sleep 600"]
    fill = [
        subprocess.run(sleeper, capture_output=True, text=True, check=True, cwd=tmp).stdout.strip()
        for _ in range(2)
    ]
    config = {"env": "slurm", "n_workers": 2, "options": SLURM_OPTIONS, "log_dir": str(tmp)}
    try:
        with _parallel(config):
            submission = _async(tmp, async_shard_size=20)(range(20))
            with Clock() as clock:
                state = status(tmp / "specs")[0]
            shard_job = submission[0]["job_id"]
            subprocess.run(["scancel", *fill], check=True)
            submission.wait(timeout=300, poll=0.5)
    finally:
        subprocess.run(["scancel", *fill], check=False)
    assert state.state == "pending" and state.detail and "None" not in state.detail, state
    _, left = _gone([*fill, shard_job])
    return Row(f"pending, '{state.detail}'", f"{clock.s:.2f} (status)", jobs_left=str(len(left)))


# --- the run --------------------------------------------------------------------------------


def slurm_up() -> bool:
    try:
        return subprocess.run(["sinfo", "-h"], capture_output=True, timeout=10).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def run_case(item: Case) -> tuple[Row | None, str | None]:
    tmp = Path(tempfile.mkdtemp(prefix=f"reliability.{item.key}."))
    try:
        return item.run(tmp), None
    except Exception as err:  # a case that does not hold is reported, the others still run
        traceback.print_exc()
        return None, f"{type(err).__name__}: {first_line(err) if str(err) else ''}"
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="*", help="these case keys only; the doc is not written")
    args = parser.parse_args(argv)
    slurm = slurm_up()
    rows, failed, skipped = [], [], []
    for item in CASES:
        if args.only and item.key not in args.only:
            continue
        if item.slurm and not slurm:
            skipped.append(item.key)
            continue
        print(f"[reliability] {item.key}: {item.fault}", flush=True)
        with Clock() as clock:
            row, problem = run_case(item)
        print(f"[reliability] {item.key}: {problem or row.happens} ({clock.s:.0f} s)", flush=True)
        if problem:
            failed.append(item.key)
            row = Row(f"**NOT HELD**: {problem}", "-")
        rows.append(
            [item.key, item.fault, row.happens, row.seconds, row.jobs_left, row.lost,
             row.duplicated, f"`{item.test}`"]
        )  # fmt: skip
    header = ["#", "fault or attack", "what happens", "seconds", "jobs left", "results lost",
              "duplicated", "test"]  # fmt: skip
    note = f"Not run (no SLURM here): {', '.join(skipped)}.\n\n" if skipped else ""
    stamp = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    if not args.only:
        write_section(
            "faults",
            f"Measured {stamp} on {machine()} by `python benchmarks/reliability.py`.\n\n"
            f"{note}{table(header, rows)}",
            DOC,
        )
    if failed:
        print(f"[reliability] not held: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
