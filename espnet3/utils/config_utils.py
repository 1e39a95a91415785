"""Upstream ESPnet3's name for :mod:`espnet3.utils.config_files`: the same module, not a copy.

Code written for upstream ESPnet3 imports its config loading from here: ``load_line``,
``self_name``, ``config_path``, ``set_corpus_and_system``, ``OMEGACONF_ESPNET3_RESOLVER``,
``load_config_with_defaults``, ``load_default_config``, ``load_and_merge_config``,
``get_required_config``, ``convert_to_dict`` and the
helpers ``_load_default_config``, ``_build_config_path``, ``_ensure_target_convert_all``,
``_resolve_egs3_path`` and ``_rewrite_relative_resolver_paths``.

Example:
    >>> from espnet3.utils import config_files
    >>> from espnet3.utils.config_utils import load_and_merge_config
    >>> load_and_merge_config is config_files.load_and_merge_config
    True

Importing this module puts :mod:`espnet3.utils.config_files` itself in its place in
``sys.modules``, so both names denote one module object: the resolvers are registered once,
and patching an attribute under either name (``monkeypatch.setattr(
"espnet3.utils.config_utils._load_default_config", ...)``) changes what the loader calls.
"""

import sys

from espnet3.utils import config_files

sys.modules[__name__] = config_files
