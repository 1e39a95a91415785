"""Share a prepared dataset: as a Hugging Face dataset on disk, or as Lhotse manifests.

Either form is read by readers without espnet3: ``datasets.load_from_disk``, or Lhotse's
``CutSet.from_file`` (the audio the cuts kept in dataset rows is copied next to the manifests).
A single manifest is shared the same way: :class:`RowCutSet` (what
:func:`~espnet3.data.hf_to_lhotse.cutset_from_huggingface` returns) copies that audio beside
the manifest its ``to_file`` writes.

Both writers build the result beside the target and rename it into place, so a crash never
leaves a half-written dataset that a reader would accept; an existing target is never
overwritten. :class:`~espnet3.data.dataset.ESPnet3Dataset` reads both back.

Example:
    >>> import tempfile, pathlib, numpy as np, soundfile as sf
    >>> from espnet3.data.dataset import ESPnet3Dataset
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> sf.write(d / "u1.wav", np.array([0, 3, -3], np.int16), 8000)
    >>> _ = (d / "list.tsv").write_text("u1\\tu1.wav\\thi\\n")
    >>> save_huggingface(ESPnet3Dataset(d / "list.tsv"), d / "hf")
    >>> shared = ESPnet3Dataset(d / "hf")
    >>> shared[0]["utt_id"], np.rint(shared[0]["speech"] * 32768).tolist()
    ('u1', [0.0, 3.0, -3.0])
"""

from __future__ import annotations

import io
import logging
import os
import re
import shutil
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import soundfile as sf
from lhotse import AudioSource, CutSet, Recording, RecordingSet, SupervisionSet
from lhotse.cut import Cut
from lhotse.utils import fastcopy

from espnet3.data.audio import to_int16
from espnet3.data.input_kinds import LHOTSE_CUTS
from espnet3.data.row_cuts import file_stem
from espnet3.data.row_source import names_row, read_row_audio
from espnet3.errors import Espnet3Error
from espnet3.utils.atomic import remove_stale_temps, temp_name

log = logging.getLogger(__name__)

#: Folder of a :func:`save_lhotse` directory holding the audio it copied.
AUDIO_DIR = "audio"


def save_huggingface(items: Iterable[dict[str, Any]], path: str | os.PathLike) -> None:
    """Write ESPnet3 items (e.g. an ``ESPnet3Dataset``) as a ``save_to_disk`` dataset.

    Audio is embedded as 16-bit FLAC in an ``Audio(decode=False)`` column, so the directory is
    self-contained; every other field becomes a column.
    """
    import datasets

    columns: dict[str, list] = {}
    for item in items:
        row = dict(item)
        row["audio"] = {"bytes": _flac(row.pop("speech"), row["sampling_rate"]), "path": None}
        for key, value in row.items():
            columns.setdefault(key, []).append(value)
    table = datasets.Dataset.from_dict(columns).cast_column("audio", datasets.Audio(decode=False))
    with _staged(path) as staging:
        table.save_to_disk(staging)


def save_lhotse(cuts: Any, directory: str | os.PathLike) -> None:
    """Write a ``CutSet`` as ``recordings``, ``supervisions`` and ``cuts`` ``.jsonl.gz`` that
    Lhotse reads without espnet3.

    Audio that only espnet3 reads (a source naming a Hugging Face dataset row, see
    :mod:`espnet3.data.row_source`) is copied, its encoded bytes unchanged, to
    ``<directory>/audio/<cut position // 1000>/<recording id>.<ext>``, and the manifests point
    at those files by absolute path (read them where they were written, e.g. on a shared file
    system); other audio (files, URLs) is referenced where it is. So the saved cuts load, and
    pass ``lhotse.validate(cuts, read_data=True)``, in a process that never imported espnet3.
    The cuts passed in keep their sources. :func:`save_huggingface` embeds the audio instead.
    The cuts are streamed: a lazy set is written without being held, each recording once per
    run of consecutive cuts of it.

    Example:
        >>> import tempfile, pathlib, numpy as np, soundfile as sf
        >>> from lhotse import CutSet, Recording
        >>> d = pathlib.Path(tempfile.mkdtemp())
        >>> sf.write(d / "u1.wav", np.zeros(800, np.int16), 8000)
        >>> cuts = CutSet.from_cuts([Recording.from_file(d / "u1.wav").to_cut()])
        >>> save_lhotse(cuts, d / "shared")
        >>> CutSet.from_file(d / "shared" / "cuts.jsonl.gz")[0].duration
        0.1
    """
    target = Path(directory).resolve()  # the manifests name the audio by absolute path
    with _staged(target) as staging:
        staging.mkdir()
        # Written into the staging directory, named where they will be once it is renamed.
        audio = _AudioCopier(staging / AUDIO_DIR, target / AUDIO_DIR)
        with (
            RecordingSet.open_writer(staging / "recordings.jsonl.gz") as recordings,
            SupervisionSet.open_writer(staging / "supervisions.jsonl.gz") as supervisions,
            CutSet.open_writer(staging / LHOTSE_CUTS) as written,
        ):
            last = None
            for cut in audio.streamed(cuts, target):  # streamed: a lazy set stays lazy
                if cut.recording_id != last:
                    recordings.write(cut.recording)
                    last = cut.recording_id
                for supervision in cut.supervisions:  # from the cut's start to the recording's
                    supervisions.write(supervision.with_offset(cut.start))
                written.write(cut)
    if audio.copied:
        log.info("save_lhotse: copied the audio of %d recordings to %s", audio.copied, audio.final)


class _AudioCopier:
    """Turns sources only espnet3 reads into ``file`` sources under ``final`` (see save_lhotse).

    Files are written under ``staging``, which becomes ``final`` when the save succeeds.
    """

    def __init__(self, staging: Path, final: Path):
        self.staging, self.final, self.copied = staging, final, 0

    def streamed(self, cuts: Iterable[Cut], beside: Path) -> Iterator[Cut]:
        """``cuts`` with dataset-row sources replaced by files, converted as they are read
        (a recording is copied once per run of consecutive cuts of it); the names of the
        entries in ``beside`` that file sources lie under are collected in ``used``."""
        self.used: set[str] = set()
        inside = f"{beside}{os.sep}"
        last: Recording | None = None
        for position, cut in enumerate(cuts):
            if last is None or last.id != cut.recording_id:
                last = self.native(cut.recording, position)
                self.used.update(
                    s.source[len(inside) :].split(os.sep, 1)[0]
                    for s in last.sources
                    if s.type == "file" and s.source.startswith(inside)
                )
            yield fastcopy(cut, recording=last)

    def native(self, recording: Recording, position: int) -> Recording:
        """``recording`` with each of its dataset-row sources replaced by a copied file."""
        if not any(names_row(source) for source in recording.sources):
            return recording
        stem = file_stem(recording.id)
        several = len(recording.sources) > 1
        sources = [
            self._copied(source, f"{position // 1000:05d}/{stem}{f'.{k}' if several else ''}")
            if names_row(source)
            else source
            for k, source in enumerate(recording.sources)
        ]
        self.copied += 1
        return fastcopy(recording, sources=sources)

    def _copied(self, source: AudioSource, name: str) -> AudioSource:
        relative = f"{name}.{source.source.rsplit('.', 1)[1]}"  # the extension the row names
        (self.staging / relative).parent.mkdir(parents=True, exist_ok=True)
        (self.staging / relative).write_bytes(read_row_audio(source.source))
        return fastcopy(source, type="file", source=str(self.final / relative))


class RowCutSet(CutSet):
    """A ``CutSet`` whose saved manifest Lhotse reads without espnet3, while the cuts in this
    process read audio kept in dataset rows directly (what
    :func:`~espnet3.data.hf_to_lhotse.cutset_from_huggingface` returns).

    ``to_file`` (and ``to_jsonl``, ``to_json``, ``to_yaml``, which it calls) copies the audio
    of ``hf-row:`` sources (:mod:`espnet3.data.row_source`), encoded bytes unchanged, to a new
    directory beside the manifest, ``<manifest name>.audio-<random hex>/``, and writes
    ``file`` sources naming those files by absolute path: ``CutSet.from_file``, ``load_audio``
    and ``lhotse.validate(cuts, read_data=True)`` then work wherever that path is visible,
    without espnet3. Cuts without such sources are written exactly as ``CutSet`` writes them.
    The cuts in memory keep their sources.

    No half-written result is ever visible: the audio and the manifest are written into a
    temporary directory beside the manifest (:func:`~espnet3.utils.atomic.temp_name`), the
    audio directory is renamed into place, the manifest is renamed over the old one, and only
    then are the audio directories of earlier writes of that manifest removed; a crash leaves
    either the old manifest and its audio or the new ones. Writing one manifest from two
    processes at once is not supported.

    Lhotse's operations (``filter``, ``subset``, ...) return a plain ``CutSet``, which writes
    ``hf-row:`` sources as they are (readable only where espnet3 is imported): wrap the result,
    ``RowCutSet(cuts.filter(...)).to_file(path)``, to share it.

    Example:
        >>> import tempfile, pathlib, numpy as np, soundfile as sf
        >>> from lhotse import Recording
        >>> d = pathlib.Path(tempfile.mkdtemp())
        >>> sf.write(d / "u1.wav", np.zeros(800, np.int16), 8000)
        >>> cuts = RowCutSet([Recording.from_file(d / "u1.wav").to_cut()])
        >>> cuts.to_file(d / "cuts.jsonl.gz")   # no dataset rows: nothing copied
        >>> sorted(p.name for p in d.iterdir()), CutSet.from_file(d / "cuts.jsonl.gz")[0].duration
        (['cuts.jsonl.gz', 'u1.wav'], 0.1)
    """

    def __init__(self, cuts: Iterable[Cut] | None = None) -> None:
        super().__init__(cuts.cuts if isinstance(cuts, CutSet) else cuts)

    def to_jsonl(self, path: str | os.PathLike) -> None:
        """Write JSON lines (``.jsonl``, ``.jsonl.gz``); see the class docstring."""
        self._share(path, CutSet.to_jsonl)

    def to_json(self, path: str | os.PathLike) -> None:
        """Write one JSON list (``.json``, ``.json.gz``); see the class docstring."""
        self._share(path, CutSet.to_json)

    def to_yaml(self, path: str | os.PathLike) -> None:
        """Write YAML (``.yaml``, ``.yaml.gz``); see the class docstring."""
        self._share(path, CutSet.to_yaml)

    def _share(self, path: str | os.PathLike, write: Callable[[CutSet, Any], None]) -> None:
        if not any(names_row(s) for cut in self for s in cut.recording.sources):
            write(self, path)
            return
        target = _local_manifest(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        remove_stale_temps(target.parent)  # what writers killed mid-write left
        final = target.with_name(f"{target.name}.audio-{os.urandom(4).hex()}")
        staging = Path(temp_name(target))
        staging.mkdir()
        try:
            audio = _AudioCopier(staging / AUDIO_DIR, final)
            cuts = CutSet(audio.streamed(self, target.parent))  # lazy: converted as written
            write(cuts, staging / target.name)  # the same name: Lhotse picks the format by it
            _fsync(staging / target.name)
            os.rename(staging / AUDIO_DIR, final)
            try:
                os.replace(staging / target.name, target)
            except BaseException:
                shutil.rmtree(final, ignore_errors=True)
                raise
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        _remove_earlier_audio(target, audio.used)
        log.info("%s: copied the audio of %d recordings to %s", target, audio.copied, final)


def _local_manifest(path: str | os.PathLike) -> Path:
    """``path`` made absolute (the manifest names its audio by it); a stream or remote path,
    which has no directory beside it for the audio, is refused."""
    name = os.fspath(path)
    if name == "-" or name.startswith("pipe:") or "://" in name:
        raise Espnet3Error(
            f"cannot write cuts whose audio is kept in dataset rows to {name!r}: their audio "
            "is copied beside the manifest, which needs a local path; write to a file path, or "
            "use CutSet(cuts).to_file(...) to keep the dataset-row sources (read only where "
            "espnet3 is imported)"
        )
    return Path(name).resolve()


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _remove_earlier_audio(target: Path, used: set[str]) -> None:
    """Remove the audio directories of earlier writes of ``target`` that it no longer uses."""
    earlier = re.compile(re.escape(target.name) + r"\.audio-[0-9a-f]{8}")
    for entry in target.parent.iterdir():
        if earlier.fullmatch(entry.name) and entry.name not in used and entry.is_dir():
            shutil.rmtree(entry, ignore_errors=True)


def _flac(speech: Any, sampling_rate: int) -> bytes:
    buffer = io.BytesIO()
    sf.write(buffer, to_int16(speech), sampling_rate, format="FLAC")
    return buffer.getvalue()


class _staged:
    """A fresh path beside ``target``; renamed to ``target`` on success, removed on failure."""

    def __init__(self, target: str | os.PathLike):
        self.target = Path(target)
        if self.target.exists():
            raise Espnet3Error(
                f"{self.target} already exists: remove it or choose another path "
                "(shared datasets are never overwritten)"
            )

    def __enter__(self) -> Path:
        self.target.parent.mkdir(parents=True, exist_ok=True)
        # os.mkdir, not mkdtemp: what is renamed into place gets the umask's mode.
        self.parent = Path(temp_name(self.target))
        self.parent.mkdir()
        return self.parent / "data"

    def __exit__(self, exc_type, exc, tb) -> None:
        try:
            if exc_type is None:
                os.rename(self.parent / "data", self.target)
        finally:
            shutil.rmtree(self.parent, ignore_errors=True)
