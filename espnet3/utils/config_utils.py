"""Upstream ESPnet3's name for :mod:`espnet3.utils.config_files`: a view of it, not a copy.

Code written for upstream ESPnet3 imports its config loading from here: ``load_line``,
``self_name``, ``config_path``, ``set_corpus_and_system``, ``OMEGACONF_ESPNET3_RESOLVER``,
``load_config_with_defaults``, ``load_default_config``, ``load_and_merge_config``,
``get_required_config``, ``convert_to_dict`` and the
helpers ``_load_default_config``, ``_build_config_path``, ``_ensure_target_convert_all``,
``_resolve_egs3_path`` and ``_rewrite_relative_resolver_paths``.

Every name is read from :mod:`~espnet3.utils.config_files`, and setting or deleting one here
sets or deletes it there, so patching under this name (upstream's tests do
``monkeypatch.setattr("espnet3.utils.config_utils._load_default_config", ...)``) changes
what the loader calls; the resolvers are registered once, by that module.

Example:
    >>> from espnet3.utils import config_files, config_utils
    >>> config_utils.load_and_merge_config is config_files.load_and_merge_config
    True
    >>> original = config_utils._load_default_config
    >>> config_utils._load_default_config = print
    >>> config_files._load_default_config is print
    True
    >>> config_utils._load_default_config = original
"""

from __future__ import annotations

import sys
from types import ModuleType

from espnet3.utils import config_files


def _forwarded(name: str) -> property:
    """The attribute ``name`` of config_files: read, set and deleted there."""
    return property(
        lambda _: getattr(config_files, name),
        lambda _, value: setattr(config_files, name, value),
        lambda _: delattr(config_files, name),
    )


def _dir(module: ModuleType) -> list[str]:
    return sorted(set(vars(module)) | set(vars(config_files)))


# ``from espnet3.utils.config_utils import *`` gives what it gives from config_files.
__all__ = [name for name in vars(config_files) if not name.startswith("_")]


# The documented way to give a module attribute hooks is to set its __class__ (Python
# reference, "Customizing module attribute access"): this module object stays in sys.modules,
# under its own name and file. Properties, unlike __getattr__/__setattr__, are data
# descriptors, which monkeypatch.setattr and mock.patch save and restore through.
sys.modules[__name__].__class__ = type(
    "ConfigFilesView",
    (ModuleType,),
    {
        "__dir__": _dir,
        **{name: _forwarded(name) for name in vars(config_files) if not name.startswith("__")},
    },
)
