"""Small checks shared by every config section: plain containers and known keys.

Example:
    >>> from omegaconf import OmegaConf
    >>> to_plain(OmegaConf.create({"a": [1, "${b}"], "b": 2}))
    {'a': [1, 2], 'b': 2}
    >>> check_keys({"trian": []}, ["train", "valid"], "dataset")
    Traceback (most recent call last):
    ...
    espnet3.errors.ConfigError: dataset: unknown key 'trian' (did you mean 'train'?); known keys: train, valid
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from espnet3.errors import ConfigError, did_you_mean


def to_plain(value: Any) -> Any:
    """``value`` with OmegaConf containers turned into resolved dicts and lists.

    Anything else (including objects already built, such as datasets) is returned unchanged.
    """
    from omegaconf import DictConfig, ListConfig, OmegaConf

    if isinstance(value, DictConfig | ListConfig):
        return OmegaConf.to_container(value, resolve=True)
    return value


def as_mapping(value: Any, where: str) -> dict[str, Any]:
    """``value`` as a plain dict (``None`` is empty), or a :class:`ConfigError` naming ``where``."""
    value = to_plain(value)
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ConfigError(
            f"{where} must be a mapping (key: value), got {type(value).__name__} {value!r}"
        )
    return dict(value)


def check_keys(mapping: Mapping[str, Any], known: Iterable[str], where: str) -> None:
    """Raise :class:`ConfigError` for the first key of ``mapping`` not in ``known``."""
    known = list(known)
    for key in mapping:
        if key not in known:
            raise ConfigError(
                f"{where}: unknown key '{key}'{did_you_mean(str(key), known)}; "
                f"known keys: {', '.join(known)}"
            )


def check_positive(name: str, value: Any, hint: str = "", none_ok: bool = True) -> Any:
    """Return ``value`` if it is a positive integer (or ``None``, when ``none_ok``); else raise
    :class:`ConfigError` naming ``name`` and the value, then ``hint``.

    Example:
        >>> check_positive("batch_size", 0)
        Traceback (most recent call last):
        ...
        espnet3.errors.ConfigError: batch_size must be a positive integer or None, got 0
        >>> check_positive("parallel.n_workers", 4, none_ok=False)
        4
    """
    if value is None and none_ok:
        return value
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        what = "a positive integer or None" if none_ok else "a positive integer"
        raise ConfigError(f"{name} must be {what}, got {value!r}{hint}")
    return value


def check_seconds(name: str, value: Any) -> float | None:
    """``value`` as seconds if it is a positive number (or ``None``); else raise
    :class:`ConfigError` naming ``name`` and the value.

    Example:
        >>> check_seconds("item_timeout", -1)
        Traceback (most recent call last):
        ...
        espnet3.errors.ConfigError: item_timeout must be a positive number of seconds or null, got -1
        >>> check_seconds("item_timeout", 3)
        3.0
    """
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise ConfigError(f"{name} must be a positive number of seconds or null, got {value!r}")
    return float(value)


#: What to do with an item that fails: stop the run, or record the item and go on.
ERROR_POLICIES = ("raise", "skip")


def check_error_policy(on_error: Any) -> str:
    """Return ``on_error`` if it is one of :data:`ERROR_POLICIES`; else raise naming it.

    Example:
        >>> check_error_policy("skip")
        'skip'
    """
    if on_error not in ERROR_POLICIES:
        raise ConfigError(
            f"on_error must be one of {', '.join(ERROR_POLICIES)}, got {on_error!r}"
            f"{did_you_mean(str(on_error), ERROR_POLICIES)}"
        )
    return on_error
