"""Hugging Face dataset split -> Lhotse ``CutSet``, converted in parallel.

:func:`cutset_from_huggingface` works in four steps: check its arguments, open the rows
(:class:`_Source`: a dataset object, or a reference every worker opens itself), convert them
in chunks on the Dask cluster (``client``, or the configured ``parallel:``; in this process
when neither is set; :func:`convert_chunk` on each worker), and assemble the cuts in row order.
Each cut's audio stays in its dataset row (a source naming the row) or, when asked, is written
to a file; either way the result passes ``lhotse.validate``. The result is a
:class:`~espnet3.data.sharing.RowCutSet`: its ``to_file`` copies the audio kept in dataset rows
beside the manifest, so Lhotse alone reads the file it writes (or use
:func:`~espnet3.data.sharing.save_lhotse` for a directory of manifests).

Example:
    >>> import tempfile, numpy as np, datasets
    >>> ds = datasets.Dataset.from_dict({
    ...     "audio": [{"array": np.zeros(800, np.float32), "sampling_rate": 8000}] * 2,
    ...     "text": ["a", "b"]})
    >>> cuts = cutset_from_huggingface(
    ...     {"audio": "audio", "text": "text"}, None, ds, "train", audio_dir=tempfile.mkdtemp())
    >>> [c.id for c in cuts], cuts[0].duration
    (['train-00000000', 'train-00000001'], 0.1)
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

from lhotse import CutSet, MonoCut

from espnet3.data.fields import resolve_fields
from espnet3.data.hf_open import (
    Reference,
    open_reference,
    open_split,
    saved_location,
    select_split,
)
from espnet3.data.manifest_parts import (
    ManifestParts,
    decode_ids,
    duplicate_digest,
    id_digests,
    ids_with_digest,
    write_part,
)
from espnet3.data.row_cuts import (
    CACHE_ENV,
    RowLocator,
    audio_cache_dir,
    audio_cache_root,
    row_to_cut,
    utt_id,
)
from espnet3.data.row_source import install
from espnet3.data.sharing import RowCutSet
from espnet3.errors import ConfigError, Espnet3Error, ItemError
from espnet3.utils.atomic import atomic_write_jsonl
from espnet3.utils.checks import check_error_policy, check_positive
from espnet3.utils.hashing import stable_hash

log = logging.getLogger(__name__)

#: Rows per task when not given: large enough to amortise Dask's per-task cost.
DEFAULT_ROWS_PER_CHUNK = 200
_ROWS_PER_READ = 50  # rows a worker reads from the dataset at once
#: Above this many rows the cuts are written in parts and returned lazily unless asked
#: otherwise: a cut held in memory costs about 2.4 KB.
EAGER_MAX_ROWS = 100_000


@dataclass(frozen=True)
class _Chunk:
    """Rows ``start..stop-1`` (chunk ``number``): a slice of a dataset object, or a reference
    any worker opens."""

    number: int
    start: int
    stop: int
    reference: Reference | None = None
    rows: Any = None


class _Converted(NamedTuple):
    """What one chunk gave: its cuts (``None`` once written to its part), its bad rows, how
    many of its cuts read cached audio, and the digests of user-given ids (a part's only)."""

    number: int
    cuts: list[MonoCut] | None
    failures: list[dict]
    cached: int = 0
    ids: bytes = b""


def cutset_from_huggingface(
    data_info: Mapping[str, Any] | None,
    dataset_length: int | None,
    dataset_id: Any,
    split: str | None,
    client: Any = None,
    *,
    audio_dir: str | os.PathLike | None = None,
    id_prefix: str | None = None,
    audio_format: str = "flac",
    raw_audio: bool = True,
    rows_per_chunk: int | None = None,
    on_error: str = "raise",
    errors_path: str | os.PathLike | None = None,
    load_kwargs: Mapping[str, Any] | None = None,
    manifest_dir: str | os.PathLike | None = None,
    lazy: bool | None = None,
) -> RowCutSet:
    """Convert a Hugging Face dataset split into a ``CutSet``, one cut per row, in parallel.

    ``dataset_id`` is a loaded ``datasets.Dataset`` (or ``DatasetDict``, indexed by ``split``),
    a directory written by ``save_to_disk``, or anything ``datasets.load_dataset`` accepts (a
    hub id when online, a local data directory). Workers open an id themselves, once per
    process; a dataset object is sent in row slices. ``dataset_length`` limits the rows
    converted (``None``: all). Cut ids are ``data_info['id']`` or ``<id_prefix><row>``
    (``id_prefix`` defaults to ``"<split>-"``), so they are the same on every run.

    ``data_info['audio']`` may return the column's value or its decoded ``["array"]`` (as in
    the guide); a bare array takes the sampling rate of the row's audio, so
    ``data_info['sampling_rate']`` is needed only when the row has no audio value or several
    at different rates.

    Where each cut's audio is read from later:

    - without ``audio_dir``, encoded audio stays in the dataset: the cut's source names its
      row (see :mod:`espnet3.data.row_source`; needs ``data_info['audio']`` to return an
      audio column's value or its unchanged ``["array"]``, and a dataset that can be
      re-opened: an id, a directory, or a dataset object loaded unchanged by
      ``load_from_disk``). Nothing is copied, so this is the fast way;
    - without ``audio_dir``, audio the dataset cannot hold for the cuts (an in-memory
      dataset, changed samples, SPHERE files) is written under a cache directory, named in a
      log line (:func:`~espnet3.data.row_cuts.audio_cache_root`: ``ESPNET3_CACHE_DIR``, else
      under ``HF_DATASETS_CACHE``, ``HF_HOME``, ``XDG_CACHE_HOME`` or ``~/.cache``);
    - with ``audio_dir``, every row's audio is written there as a file (see
      :mod:`espnet3.data.row_cuts`), so the cuts no longer need the dataset;
    - audio given as a path to an existing file is used where it is, either way.

    ``raw_audio`` reads ``Audio`` columns undecoded, so the original encoding is kept
    unchanged; set it ``False`` when ``data_info`` needs decoded values. ``on_error='skip'``
    drops bad rows and records ``{index, utt_id, error}`` in ``errors_path`` (JSONL);
    ``'raise'`` stops at the first bad row with an :class:`~espnet3.errors.ItemError` naming it.

    Returns a :class:`~espnet3.data.sharing.RowCutSet`: in this process the cuts read the rows
    directly, and ``cuts.to_file(path)`` copies that audio (encoded bytes unchanged) to a
    directory beside ``path`` so that Lhotse reads the manifest without espnet3.

    Large corpora: with ``manifest_dir`` (or ``lazy=True``, or more than
    :data:`EAGER_MAX_ROWS` rows unless ``lazy=False``) no process holds the cuts. Each worker
    writes its chunk's cuts as a part, ``MANIFEST_DIR/parts/cuts.NNNNN.jsonl.gz``; the parts
    are concatenated into ``MANIFEST_DIR/cuts.jsonl.gz``, and the result is a lazy set over it
    (see :mod:`espnet3.data.manifest_parts`). A re-run converts only the chunks without a
    whole part. Without ``manifest_dir`` the parts go under the cache
    (:func:`~espnet3.data.row_cuts.audio_cache_root`, ``hf_cuts/``), named in a log line.

    Example:
        >>> with get_client({"env": "local", "n_workers": 2}) as client:   # doctest: +SKIP
        ...     cuts = cutset_from_huggingface(
        ...         {"audio": "audio", "text": "sentence", "speaker": "client_id"},
        ...         None, "mozilla-foundation/common_voice_11_0", "test", client,
        ...         audio_dir="data/cv/audio", load_kwargs={"name": "hi"})
        >>> cuts.to_file("data/cv/cuts_test.jsonl.gz")   # doctest: +SKIP
    """
    fields = resolve_fields(data_info)
    _check_arguments(on_error, rows_per_chunk, dataset_length)
    source = _Source.open(dataset_id, split, load_kwargs, raw_audio, dataset_length, audio_dir)
    if source.locate_row is not None:
        install()  # the cuts may read their audio from the dataset rows, here too
    options = {
        "fields": fields,
        "audio_dir": None if audio_dir is None else str(Path(audio_dir).resolve()),
        "locate_row": source.locate_row,
        "cache_dir": source.cache_dir,
        "id_prefix": f"{split}-" if id_prefix is None and split else (id_prefix or ""),
        "audio_format": audio_format,
    }
    where = f"{_describe(dataset_id)} split {split!r}"
    size = rows_per_chunk or DEFAULT_ROWS_PER_CHUNK
    parts = None
    if manifest_dir is not None or (lazy if lazy is not None else source.total > EAGER_MAX_ROWS):
        settings = _settings(dataset_id, split, source, size, options, raw_audio, data_info)
        parts = _parts(manifest_dir, settings)
        options["parts_dir"] = str(parts.directory)
    chunks = _Chunks(source, size, parts)
    by_chunk, failures = _convert(chunks, client, options, on_error, where)
    if errors_path is not None:
        atomic_write_jsonl(errors_path, failures)
    cuts = _assemble(by_chunk) if parts is None else _combined(parts, by_chunk, chunks.count)
    cached = sum(converted.cached for converted in by_chunk.values())
    if cached:
        _report_cached(cached, source.total, source.cache_dir, where)
    return cuts


def _check_arguments(on_error: str, rows_per_chunk: Any, dataset_length: Any) -> None:
    check_error_policy(on_error)
    check_positive("rows_per_chunk", rows_per_chunk)
    if dataset_length is not None and (
        isinstance(dataset_length, bool)
        or not isinstance(dataset_length, int)
        or dataset_length < 0
    ):
        raise ConfigError(
            f"dataset_length must be an integer >= 0 (or None for all rows), got {dataset_length!r}"
        )


@dataclass(frozen=True)
class _Source:
    """The rows to convert: ``total`` of them, from ``dataset`` here or ``reference`` on the
    workers; where cuts that keep their audio in the dataset point, and the audio cache."""

    total: int
    dataset: Any = None
    reference: Reference | None = None
    locate_row: RowLocator | None = None
    cache_dir: str | None = None

    @classmethod
    def open(
        cls,
        dataset_id: Any,
        split: str | None,
        load_kwargs: Mapping[str, Any] | None,
        raw_audio: bool,
        dataset_length: int | None,
        audio_dir: str | os.PathLike | None,
    ) -> _Source:
        dataset, reference, location = None, None, None
        if isinstance(dataset_id, (str, os.PathLike)):
            # A local directory is named absolutely: workers and readers may run elsewhere.
            path = Path(dataset_id)
            name = str(path.resolve()) if path.exists() else str(dataset_id)
            reference = Reference(
                name, split, tuple(sorted((load_kwargs or {}).items())), raw_audio
            )
            location = reference._replace(raw_audio=True)
            if dataset_length is None:  # given a length, only the workers open the dataset
                dataset = open_reference(reference)
        else:
            if audio_dir is None:  # only cuts that point at rows need to know where they are
                location = saved_location(select_split(dataset_id, split))
            dataset = open_split(dataset_id, split, raw_audio)
        locate_row, cache_dir = None, None
        if audio_dir is None:
            locate_row = _row_locator(location)
            cache_dir = str(
                audio_cache_dir(locate_row.fingerprint if locate_row else dataset._fingerprint)
            )
        total = len(dataset) if dataset is not None else dataset_length
        if dataset is not None and dataset_length is not None:
            total = min(total, dataset_length)
        return cls(total, dataset, reference, locate_row, cache_dir)


def _convert(
    chunks: _Chunks, client: Any, options: dict[str, Any], on_error: str, where: str
) -> tuple[dict[int, _Converted], list[dict]]:
    """Run :func:`convert_chunk` on every chunk not done yet; what each chunk gave, by chunk
    number, and the bad rows in order.

    Under ``on_error='raise'`` the first bad row is an :class:`ItemError`; chunks finish in any
    order, so it is named only once every row before it is known (the same error every run).
    """
    from espnet3.parallel import map_indexed

    by_chunk: dict[int, _Converted] = dict(chunks.done)
    bad = [n for n, converted in by_chunk.items() if converted.failures]
    first_bad = min(bad) if on_error == "raise" and bad else None

    def first_bad_known() -> bool:
        """Whether a bad row stops the map: every row before the first bad one is known."""
        return first_bad is not None and all(n in by_chunk for n in range(first_bad))

    try:
        if not first_bad_known():
            for _, converted in map_indexed(convert_chunk, chunks, client, chunk_size=1, **options):
                by_chunk[converted.number] = converted
                if converted.failures and on_error == "raise":
                    first_bad = min(
                        converted.number, converted.number if first_bad is None else first_bad
                    )
                if first_bad_known():
                    break
        failures = [bad for n in sorted(by_chunk) for bad in by_chunk[n].failures]
        if on_error == "raise" and failures:
            first = failures[0]
            raise ItemError(
                f"row {first['index']} (utt_id {first['utt_id']!r}) of {where}: "
                f"{first['error']} (on_error='skip' drops such rows)",
                index=first["index"],
            )
    except ItemError as exc:
        if exc.__cause__ is None:  # a bad row, named above
            raise
        cause, start = exc.__cause__, chunks.numbers[exc.index] * chunks.size
        reason = (
            str(cause) if isinstance(cause, Espnet3Error) else f"{type(cause).__name__}: {cause}"
        )
        raise ItemError(
            f"rows {start}..{min(start + chunks.size, chunks.total) - 1} of {where} failed: "
            f"{reason}",
            index=start,
        ) from cause
    return by_chunk, failures


def _row_locator(location: Reference | None) -> RowLocator | None:
    """Names rows of the dataset for cuts whose audio stays there; ``None`` when it cannot."""
    if location is None:
        return None
    dataset = open_reference(location)
    return RowLocator(location, dataset._fingerprint, frozenset(dataset.column_names))


def _report_cached(cached: int, rows: int, cache_dir: str | None, where: str) -> None:
    """One log line when some audio went to the cache: where it is, and how to choose."""
    log.warning(
        "wrote the audio of %d of %d rows of %s under %s (chosen by %s; rows whose audio "
        "the dataset cannot hold for the cuts: in memory, changed samples, or SPHERE); the "
        "cuts read it from there: pass audio_dir=... or set %s to choose another directory",
        cached,
        rows,
        where,
        cache_dir,
        audio_cache_root()[1],
        CACHE_ENV,
    )


class _Chunks:
    """The chunks of a source's rows not done yet, made on demand; the length lets
    map_indexed plan tasks, ``numbers`` maps a task's position to its chunk.

    A dataset object is sent as row slices (each task carries only its rows); a reference is
    sent as is and each worker opens it. With ``parts``, chunks whose part is whole are
    ``done`` (what their records say) and not sent.
    """

    def __init__(self, source: _Source, size: int, parts: ManifestParts | None):
        self.source, self.size, self.total = source, size, source.total
        self.count = count = math.ceil(self.total / self.size)
        self.done: dict[int, _Converted] = {}
        if parts is not None:
            for number in range(count):
                record = parts.done(number)
                if record is not None:
                    self.done[number] = _Converted(
                        number, None, record["failures"], record["cached"], decode_ids(record)
                    )
            if self.done:
                log.info("%s: %d of %d parts are done", parts.directory, len(self.done), count)
        self.numbers = [n for n in range(count) if n not in self.done]

    def __iter__(self) -> Iterator[_Chunk]:
        for number in self.numbers:
            start = number * self.size
            stop = min(start + self.size, self.total)
            if self.source.reference is not None:
                yield _Chunk(number, start, stop, self.source.reference)
            else:
                rows = self.source.dataset.select(range(start, stop))
                yield _Chunk(number, start, stop, rows=rows)

    def __len__(self) -> int:
        return len(self.numbers)


def convert_chunk(
    chunk: _Chunk,
    fields: Mapping[str, Callable],
    audio_dir: str | None,
    locate_row: RowLocator | None,
    id_prefix: str,
    audio_format: str,
    cache_dir: str | None = None,
    parts_dir: str | None = None,
) -> _Converted:
    """Convert one chunk of rows on a worker: its cuts (written as its part when given
    ``parts_dir``) and its bad rows."""
    rows = chunk.rows
    if chunk.reference is not None:
        dataset = open_reference(chunk.reference)
        if chunk.start >= len(dataset):  # dataset_length was larger than the dataset
            rows = dataset.select([])
        else:
            rows = dataset.select(range(chunk.start, min(chunk.stop, len(dataset))))
    cuts, bad = [], []
    for index, row in enumerate(_iter_rows(rows), start=chunk.start):
        try:
            cuts.append(
                row_to_cut(
                    row,
                    index,
                    fields,
                    audio_dir,
                    id_prefix=id_prefix,
                    audio_format=audio_format,
                    locate_row=locate_row,
                    cache_dir=cache_dir,
                )
            )
        except Exception as exc:  # a user's data_info function may raise anything
            message = str(exc) if isinstance(exc, Espnet3Error) else f"{type(exc).__name__}: {exc}"
            bad.append(
                {
                    "index": index,
                    "utt_id": _safe_id(row, index, fields, id_prefix),
                    "error": message,
                }
            )
    cached = _count_cached(cuts, cache_dir)
    if parts_dir is None:
        return _Converted(chunk.number, cuts, bad, cached)
    ids = id_digests(cut.id for cut in cuts) if "id" in fields else b""
    write_part(parts_dir, chunk.number, cuts, rows=len(rows), failures=bad, cached=cached, ids=ids)
    return _Converted(chunk.number, None, bad, cached, ids)


def _count_cached(cuts: list[MonoCut], cache_dir: str | None) -> int:
    """How many of ``cuts`` read their audio from the cache directory."""
    if cache_dir is None:
        return 0
    inside = cache_dir + os.sep
    return sum(1 for cut in cuts if any(s.source.startswith(inside) for s in cut.recording.sources))


def _iter_rows(rows: Any) -> Iterator[dict]:
    """The rows of a ``Dataset`` as dicts, read a batch of columns at a time.

    Reading column batches and zipping them is several times cheaper than the dataset's own
    row-by-row iteration, which formats every row separately.
    """
    for batch in rows.iter(batch_size=_ROWS_PER_READ):
        names = list(batch)
        for values in zip(*(batch[name] for name in names), strict=True):
            yield dict(zip(names, values, strict=True))


def _safe_id(row: Any, index: int, fields: Mapping[str, Callable], id_prefix: str) -> str | None:
    try:
        return utt_id(row, index, fields, id_prefix)
    except Exception:  # the id itself may be what is broken
        return None


def _assemble(by_chunk: dict[int, _Converted]) -> RowCutSet:
    """The cuts the chunks returned, in row order, as one eager set."""
    cuts = [cut for number in sorted(by_chunk) for cut in by_chunk[number].cuts or ()]
    seen: set[str] = set()
    for cut in cuts:
        if cut.id in seen:
            raise _duplicate(cut.id)
        seen.add(cut.id)
    return RowCutSet(cuts)


def _combined(parts: ManifestParts, by_chunk: dict[int, _Converted], count: int) -> RowCutSet:
    """The parts concatenated into one manifest, and a lazy set over it; ids are checked for
    duplicates by their 8-byte digests (each one seen twice is confirmed by its text)."""
    path = parts.combine(count)
    cuts = RowCutSet(CutSet.from_jsonl_lazy(path))
    digest = duplicate_digest(by_chunk[n].ids for n in sorted(by_chunk))
    if digest is not None:
        seen: set[str] = set()
        for cut_id in ids_with_digest(cuts, digest):
            if cut_id in seen:
                raise _duplicate(cut_id)
            seen.add(cut_id)
    return cuts


def _duplicate(cut_id: str) -> Espnet3Error:
    return Espnet3Error(
        f"utterance id {cut_id!r} occurs more than once: make data_info['id'] unique "
        "or drop it to use row numbers"
    )


def _parts(manifest_dir: str | os.PathLike | None, settings: dict[str, Any]) -> ManifestParts:
    """The parts directory: under ``manifest_dir``, else under the cache (named in a log)."""
    if manifest_dir is None:
        manifest_dir = audio_cache_root()[0] / "hf_cuts" / stable_hash(settings)
        log.warning(
            "writing the cuts of %s split %r in parts under %s (no manifest_dir given; chosen "
            "by %s): pass manifest_dir=... to choose where",
            settings["dataset"],
            settings["split"],
            manifest_dir,
            audio_cache_root()[1],
        )
    return ManifestParts(manifest_dir, settings)


def _settings(
    dataset_id: Any,
    split: str | None,
    source: _Source,
    size: int,
    options: Mapping[str, Any],
    raw_audio: bool,
    data_info: Mapping[str, Any] | None,
) -> dict[str, Any]:
    """What a conversion's parts depend on, as JSON values: parts of other settings are not
    reused."""
    if isinstance(dataset_id, (str, os.PathLike)) and source.reference is not None:
        dataset = source.reference.path
    else:
        dataset = f"fingerprint {source.dataset._fingerprint}"
    return {
        "dataset": dataset,
        "split": split,
        "rows": source.total,
        "rows_per_chunk": size,
        "raw_audio": raw_audio,
        "data_info": {name: _identity(how) for name, how in (data_info or {}).items()},
        **{k: options[k] for k in ("audio_dir", "id_prefix", "audio_format")},
    }


def _identity(how: Any) -> str:
    """A column name, or a function by its name and a digest of its code (equal across runs;
    other callables by ``repr``, which may not be)."""
    if isinstance(how, str):
        return how
    code = getattr(how, "__code__", None)
    name = f"{getattr(how, '__module__', '')}.{getattr(how, '__qualname__', repr(how))}"
    if code is None:
        return repr(how)
    return f"{name}:{stable_hash(code.co_code.hex(), repr(code.co_consts), code.co_names)}"


def _describe(dataset_id: Any) -> str:
    return repr(str(dataset_id)) if isinstance(dataset_id, (str, os.PathLike)) else "the dataset"
