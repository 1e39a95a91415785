"""Find the hypothesis and reference files that inference wrote, for the metrics to read.

Example:
    >>> import pathlib, tempfile
    >>> infer = pathlib.Path(tempfile.mkdtemp())
    >>> (infer / "test-clean").mkdir()
    >>> _ = (infer / "test-clean" / "text.scp").write_text("utt1 HELLO\\n")
    >>> _ = (infer / "test-clean" / "hyp.scp").write_text("utt1 HELO\\n")
    >>> paths = load_scp_paths(infer, "test-clean", {"ref": "text", "hyp": "hyp"})
    >>> sorted((alias, p.name) for alias, p in paths.items())
    [('hyp', 'hyp.scp'), ('ref', 'text.scp')]
    >>> get_class_path(pathlib.PurePosixPath("a"))
    'pathlib.PurePosixPath'

The names and behaviour are upstream ESPnet3's.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path

from espnet3.errors import ConfigError, ContractError, did_you_mean


def get_class_path(obj: object) -> str:
    """``<module>.<ClassName>`` of ``obj``'s class: the key metric results are stored under.

    A display name, not an import reference: it is given for any class, including one defined
    in ``__main__`` or inside a function. To name a class so that another process can import
    it, use :func:`espnet3.runner.class_path.class_path`.

    Example:
        >>> from collections import OrderedDict
        >>> get_class_path(OrderedDict())
        'collections.OrderedDict'
    """
    cls = obj.__class__
    return f"{cls.__module__}.{cls.__name__}"


def load_scp_paths(
    inference_dir: str | os.PathLike,
    test_name: str,
    inputs: Iterable[str] | Mapping[str, str],
    file_suffix: str = ".scp",
) -> dict[str, Path]:
    """Map each metric input alias to ``inference_dir/test_name/<file><file_suffix>``.

    ``inputs`` is a list of file names (each its own alias) or a mapping ``alias: file``.
    The files are checked to exist, not read. A missing directory or file raises
    :class:`~espnet3.errors.ContractError` (an ``AssertionError``) naming what is missing.

    Example:
        >>> load_scp_paths(Path("infer"), "test-other", ["ref", "hyp"])  # doctest: +SKIP
        {'ref': PosixPath('infer/test-other/ref.scp'), 'hyp': PosixPath('infer/test-other/hyp.scp')}
    """
    if isinstance(inputs, str) or not isinstance(inputs, Iterable):
        hint = f"; write [{inputs}]" if isinstance(inputs, str) else ""
        raise ConfigError(
            "metric inputs must be a list of file names or a mapping alias: file name, got "
            f"{inputs!r}{hint}"
        )
    names = dict(inputs) if isinstance(inputs, Mapping) else {name: name for name in inputs}
    task_dir = Path(inference_dir) / test_name
    if not task_dir.is_dir():
        raise ContractError(
            f"no inference output for test set {test_name!r}: {task_dir} is not a directory; "
            "run the inference stage for it first, or check inference_dir and the test set name"
        )
    paths = {str(alias): task_dir / f"{name}{file_suffix}" for alias, name in names.items()}
    missing = [path.name for path in paths.values() if not path.is_file()]
    if missing:
        present = sorted(p.name for p in task_dir.iterdir() if p.name.endswith(file_suffix))
        named = ", ".join(f"{name}{did_you_mean(name, present)}" for name in missing)
        raise ContractError(
            f"missing {named} in {task_dir}; it holds "
            f"{', '.join(present) or f'no {file_suffix} file'}: check the metric's inputs, or "
            "run the inference stage that writes them"
        )
    return paths
