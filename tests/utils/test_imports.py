"""import_object and import_package_from_dir."""

from __future__ import annotations

import sys

import pytest

from espnet3.errors import ConfigError
from espnet3.utils.imports import import_object, import_package_from_dir, package_name_for_dir


def test_import_object_finds_attributes_and_reports_mistakes():
    import os.path

    assert import_object("os.path.join") is os.path.join
    with pytest.raises(
        ConfigError, match="module 'os.path' has no attribute 'jion'; check the spelling"
    ):
        import_object("os.path.jion")
    with pytest.raises(ConfigError, match="'os..path' is not a dotted Python name"):
        import_object("os..path")


def test_missing_import_inside_a_module_is_not_hidden(tmp_path, monkeypatch):
    (tmp_path / "brokenmod_q.py").write_text("import not_installed_pkg_q\nX = 1\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(ModuleNotFoundError, match="not_installed_pkg_q"):
        import_object("brokenmod_q.X")


def test_package_from_dir_is_named_by_its_path_and_leaves_sys_path_alone(tmp_path):
    before = list(sys.path)
    pkg = tmp_path / "r" / "dataset"
    files = {"part.py": "VALUE = 'sibling'\n", "__init__.py": "from .part import VALUE\n"}
    for name, text in files.items():
        pkg.mkdir(parents=True, exist_ok=True)
        (pkg / name).write_text(text)
    module = import_package_from_dir(pkg)
    assert module.VALUE == "sibling" and sys.path == before
    assert module.__name__ == package_name_for_dir(pkg) and module.__name__.isidentifier()
    assert sys.modules[f"{module.__name__}.part"].VALUE == "sibling"
    with pytest.raises(ConfigError, match=f"{tmp_path / 'r'} is not a Python package: create"):
        import_package_from_dir(tmp_path / "r")
