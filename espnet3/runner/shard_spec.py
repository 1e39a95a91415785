"""A shard: a slice of a runner call, written as a JSON spec that a detached job runs.

A spec holds class paths, the provider's resolved config, its params, the indices and where
results go: plain data, never a pickle, so a job (or a person) can read it safely. Its name is
a hash of the work (runner, provider, config, params, batch size, indices), so submitting the
same work again finds the same specs and their results. The error policy is not part of the
work: a shard completed under ``skip`` stays complete when the call is repeated with ``raise``.

Example:
    >>> spec = ShardSpec.for_work(runner="m:R", provider="m:P", config={}, params={},
    ...                           indices=[0, 1], batch_size=None, on_error="raise",
    ...                           result_dir="/tmp/results", shard=0, n_shards=1)
    >>> spec.name.startswith("shard-"), spec.result_path == f"/tmp/results/{spec.name}.jsonl"
    (True, True)
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from espnet3.errors import ConfigError
from espnet3.runner.class_path import stable_hash
from espnet3.runner.job_records import spec_path
from espnet3.utils.atomic import atomic_write_json

SPEC_FORMAT = 2


@dataclass(frozen=True)
class ShardSpec:
    """Everything one shard job needs; see :mod:`espnet3.runner.shard` for how it runs."""

    name: str
    runner: str
    provider: str
    config: dict[str, Any]
    params: dict[str, Any]
    indices: list[int]
    batch_size: int | None
    on_error: str
    result_path: str
    errors_path: str
    failed_path: str
    shard: int
    n_shards: int
    item_timeout: float | None = None
    format: int = SPEC_FORMAT

    @classmethod
    def for_work(
        cls,
        *,
        runner: str,
        provider: str,
        config: dict[str, Any],
        params: dict[str, Any],
        indices: list[int],
        batch_size: int | None,
        on_error: str,
        result_dir: str | os.PathLike,
        shard: int,
        n_shards: int,
        item_timeout: float | None = None,
    ) -> ShardSpec:
        """The spec of this work, named by a hash of it; result paths under ``result_dir``."""
        _check_json("config", config)
        _check_json("params", params)
        name = "shard-" + stable_hash(runner, provider, config, params, batch_size, indices)
        base = Path(result_dir).resolve() / name
        return cls(
            name=name,
            runner=runner,
            provider=provider,
            config=config,
            params=params,
            indices=indices,
            batch_size=batch_size,
            on_error=on_error,
            result_path=f"{base}.jsonl",
            errors_path=f"{base}.errors.jsonl",
            failed_path=f"{base}.failed.json",
            shard=shard,
            n_shards=n_shards,
            item_timeout=item_timeout,
        )

    def write(self, specs_dir: str | os.PathLike) -> Path:
        """Write ``<specs_dir>/<name>.spec.json`` atomically and return its path."""
        path = spec_path(specs_dir, self.name)
        atomic_write_json(path, asdict(self))
        return path

    @classmethod
    def load(cls, path: str | os.PathLike) -> ShardSpec:
        """Read a spec written by :meth:`write`, or fail naming the file and the problem."""
        try:
            data = json.loads(Path(path).read_text())
        except (OSError, ValueError) as exc:
            raise ConfigError(f"cannot read shard spec {str(path)!r}: {exc}") from None
        expected = {f.name for f in fields(cls)}
        if not isinstance(data, dict) or data.get("format") != SPEC_FORMAT or set(data) != expected:
            raise ConfigError(
                f"{str(path)!r} is not a format-{SPEC_FORMAT} shard spec: write it again by "
                f"running the same runner call"
            )
        return cls(**data)


def split_indices(indices: Sequence[int], shard_size: int) -> list[list[int]]:
    """Consecutive slices of at most ``shard_size`` indices.

    Example:
        >>> split_indices([5, 6, 7, 8, 9], 2)
        [[5, 6], [7, 8], [9]]
    """
    return [list(indices[i : i + shard_size]) for i in range(0, len(indices), shard_size)]


def default_shard_size(n_items: int, n_workers: int) -> int:
    """Spread ``n_items`` over ``n_workers`` shards.

    Example:
        >>> default_shard_size(10, 4)
        3
    """
    return max(1, math.ceil(n_items / max(n_workers, 1)))


def _check_json(what: str, value: Any) -> None:
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ConfigError(
            f"async shards store the provider {what} as JSON, but it cannot be encoded ({exc}): "
            f"pass plain values (str, numbers, lists, dicts) or paths as strings"
        ) from None
