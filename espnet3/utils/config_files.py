"""Load recipe YAML configs: Hydra-style ``defaults:`` lists and four file-aware resolvers.

A config may list other files under ``defaults:`` (Hydra's composition, without Hydra's
runtime) and use these resolvers:

- ``${load_line:tokens.txt}``: the lines of the file, each stripped (a token list);
- ``${config_path:../src/x.md}``: the path, absolute;
- ``${self_name:}``: the stem of the config file (``training``);
- ``${set_corpus_and_system:}``: ``<corpus>_<system>`` of ``egs3/<corpus>/<system>/conf/``.

A resolver sees only its arguments, not the file it is written in, so each file's
expressions are bound as the file is loaded: in ``/r/conf/training.yaml``,
``${load_line:tokens.txt}`` becomes ``${load_line:/r/conf/tokens.txt}`` (inherited values keep
pointing where their file meant) and ``${self_name:}`` becomes ``training``. Interpolations
are resolved once, after all merging, so an included file may use keys the includer defines.

Example:
    >>> import pathlib, tempfile
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> (d / "optim").mkdir()
    >>> _ = (d / "optim" / "adam.yaml").write_text("lr: 0.001\\n")
    >>> _ = (d / "tokens.txt").write_text("<blank>\\na\\nb\\n")
    >>> _ = (d / "train.yaml").write_text(
    ...     "defaults:\\n  - optim: adam\\n  - _self_\\n"
    ...     "exp_tag: ${self_name:}\\ntoken_list: ${load_line:tokens.txt}\\n")
    >>> cfg = load_config_with_defaults(d / "train.yaml")
    >>> cfg.optim.lr, cfg.exp_tag, list(cfg.token_list)
    (0.001, 'train', ['<blank>', 'a', 'b'])

:mod:`espnet3.utils.config_utils` is upstream ESPnet3's name for this module.
"""

from __future__ import annotations

import errno
import os
import re
from collections.abc import Callable, Iterator
from importlib import resources
from pathlib import Path, PurePath
from typing import Any

import yaml
from omegaconf import DictConfig, ListConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from espnet3.errors import ConfigError, MissingFileError, ModuleMissingError, SetupError

# The resolvers whose argument is a path, written relative to the file that holds it.
_PATH_RESOLVER = re.compile(r"\$\{(?P<resolver>load_line|config_path):(?P<path>[^,}]*)")
_SELF_NAME = "${self_name:}"
_CORPUS_AND_SYSTEM = "${set_corpus_and_system:}"


def load_line(path: str | os.PathLike) -> ListConfig:
    """``${load_line:...}``: the lines of the UTF-8 text file ``path``, each stripped.

    Example:
        >>> import tempfile
        >>> with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as f:
        ...     _ = f.write("<blank>\\n a \\nb")
        >>> list(load_line(f.name))
        ['<blank>', 'a', 'b']
    """
    try:
        with open(path, encoding="utf-8") as f:
            return ListConfig([line.strip() for line in f])
    except FileNotFoundError as err:
        raise MissingFileError(
            err.errno,
            "${load_line:} file not found; fix the path (a relative path is relative to the "
            "config file that holds it)",
            os.fspath(path),
        ) from None


def self_name(name: str = "") -> str:
    """``${self_name:}``: loading replaces it with the stem of its file (``training``).

    Example:
        >>> self_name("training")
        'training'
    """
    if not name:
        raise ConfigError(
            "${self_name:} was not replaced by the name of its config file: load the file "
            "with load_config_with_defaults() or load_and_merge_config(), not OmegaConf.load()"
        )
    return name


def config_path(path: str) -> str:
    """``${config_path:...}``: a path; loading has already made a relative one absolute.

    Example:
        >>> config_path("/r/src/hf_demo_readme.md")
        '/r/src/hf_demo_readme.md'
    """
    return path


def set_corpus_and_system(value: str = "") -> str:
    """``${set_corpus_and_system:}``: loading a config in ``egs3/<corpus>/<system>/conf/``
    writes the value in (``${set_corpus_and_system:mini_an4_asr}``); elsewhere it stays empty.

    Example:
        >>> set_corpus_and_system("mini_an4_asr")
        'mini_an4_asr'
    """
    if not value:
        raise SetupError(
            "${set_corpus_and_system:} needs a config under egs3/<corpus>/<system>/conf/ to "
            "know the corpus and system; this one is not there: write the value instead "
            "(e.g. mini_an4_asr)"
        )
    return value


OMEGACONF_ESPNET3_RESOLVER: dict[str, Callable[..., object]] = {
    f.__name__: f for f in (load_line, self_name, config_path, set_corpus_and_system)
}


for _name, _resolver in OMEGACONF_ESPNET3_RESOLVER.items():
    # replace=True: importing this module again (importlib.reload, a second copy on the path)
    # registers the same functions again instead of failing.
    OmegaConf.register_new_resolver(_name, _resolver, replace=True)


def load_config_with_defaults(path: str | os.PathLike, resolve: bool = True) -> DictConfig:
    """Load the YAML config ``path`` with the files its ``defaults:`` list names merged in.

    ``defaults:`` entries, merged in order (later wins):

    - ``base`` or ``base.yaml``: the file ``base.yaml`` beside ``path`` (also ``../x``);
    - ``optim: adam``: ``optim/adam.yaml``, placed under the key ``optim`` (``model/enc:
      conformer`` under ``model.enc``); ``optim: null`` switches the group off;
    - ``_self_``: the file's own keys; without it they come last, overriding the rest.

    Included files may have ``defaults:`` too. ``resolve=False`` leaves interpolations for
    later. Mappings with a ``_target_`` get ``_convert_: all`` (Hydra then passes plain dicts
    and lists to the classes it builds).

    Example:
        >>> import pathlib, tempfile
        >>> d = pathlib.Path(tempfile.mkdtemp())
        >>> _ = (d / "base.yaml").write_text("a: 1\\nb: ${a}\\n")
        >>> _ = (d / "main.yaml").write_text("defaults: [base]\\na: 2\\n")
        >>> OmegaConf.to_container(load_config_with_defaults(d / "main.yaml"))
        {'a': 2, 'b': 2}
    """
    path = Path(path)
    return _finish(_compose(path, bind_self_name=True), resolve, f"config {path}")


def load_default_config(config_name: str, default_package: str) -> DictConfig:
    """Load ``conf/<config_name>`` of the recipe package ``default_package``, unresolved.

    Usually ``egs3.TEMPLATE.<system>``; any importable package with a ``conf/`` directory
    serves. Interpolations wait for a user config merged over it (:func:`load_and_merge_config`).

    Example:
        >>> cfg = load_default_config("training.yaml", "egs3.TEMPLATE.asr")  # doctest: +SKIP
        >>> cfg.exp_tag                                                      # doctest: +SKIP
        'training'
    """
    cfg = _load_default_config(config_name, default_package, bind_self_name=True)
    _ensure_target_convert_all(cfg)
    return cfg


def load_and_merge_config(
    config_path: str | os.PathLike | None,
    config_name: str,
    default_package: str | None = None,
    resolve: bool = True,
) -> DictConfig | None:
    """Merge the user config ``config_path`` over the packaged default ``conf/<config_name>``.

    Interpolations are resolved after the merge: user values may refer to defaults, defaults
    see user overrides, and inherited ``${self_name:}``/``${set_corpus_and_system:}`` name the
    user's file and recipe. ``default_package`` defaults to ``egs3.TEMPLATE.<system>`` for a
    config in ``egs3/<corpus>/<system>/conf/``. ``None`` for ``config_path`` returns ``None``.

    Example:
        >>> cfg = load_and_merge_config(
        ...     "egs3/mini_an4/asr/conf/training.yaml", "training.yaml")  # doctest: +SKIP
        >>> cfg.exp_tag                                                   # doctest: +SKIP
        'training'
    """
    if config_path is None:
        return None
    config_path = Path(config_path)
    if default_package is None:
        default_package = _resolve_egs3_path(config_path, as_package=True)
    if default_package is None:
        raise ConfigError(
            "default_package is required when it cannot be inferred from config_path: "
            f"{config_path} is not in an egs3/<corpus>/<system>/conf/ directory; pass "
            "default_package (e.g. 'egs3.TEMPLATE.asr')"
        )
    # Both sides are loaded with ${self_name:} unbound: bound now, it names the user's file
    # even where the value comes from the default.
    default_cfg = _load_default_config(config_name, default_package, bind_self_name=False)
    user_cfg = _compose(config_path, bind_self_name=False)
    merged = OmegaConf.merge(default_cfg, user_cfg)
    _bind_strings(merged, config_path.parent, config_path.stem)
    where = f"config {config_path} merged over conf/{config_name} of {default_package}"
    return _finish(merged, resolve, where)


def get_required_config(config: Any, key: str, error_message: str) -> Any:
    """``config[key]``, or a ``RuntimeError`` (a :class:`SetupError`) with ``error_message``
    when ``config`` is ``None`` or the value is missing or ``None`` (``0`` and ``""`` count).

    Example:
        >>> get_required_config({"save_path": "data/tokens"}, "save_path", "set save_path")
        'data/tokens'
        >>> get_required_config({"cutoff": 0}, "cutoff", "set cutoff")
        0
    """
    value = config.get(key, None) if config is not None else None
    if value is None:
        raise SetupError(error_message)
    return value


def convert_to_dict(value: Any) -> Any:
    """``value`` with OmegaConf containers turned into plain dicts and lists (resolved);
    anything else returned as is, the very same object.

    Example:
        >>> convert_to_dict(OmegaConf.create({"a": 1, "b": "${a}"}))
        {'a': 1, 'b': 1}
    """
    if isinstance(value, (DictConfig, ListConfig)):
        return OmegaConf.to_container(value, resolve=True)
    return value


def _load_default_config(
    config_name: str, default_package: str, bind_self_name: bool = True
) -> DictConfig:
    """``conf/<config_name>`` of ``default_package``, composed but neither resolved nor final."""
    try:
        package_root = resources.files(default_package)
    except ModuleNotFoundError as err:
        # Only "this package does not exist"; a missing import inside it must surface as is.
        if err.name is None or not f"{default_package}.".startswith(f"{err.name}."):
            raise
        raise ModuleMissingError(
            f"default config package {default_package!r} cannot be imported ({err}): run "
            "from the directory that holds egs3/, or install the recipe package"
        ) from None
    # (A zipped package is extracted to a temporary file, which bound paths would point to.)
    with resources.as_file(package_root.joinpath("conf", config_name)) as path:
        origin = f"it is the default conf/{config_name} of package {default_package!r}"
        return _compose(Path(path), bind_self_name=bind_self_name, origin=origin)


def _compose(
    path: Path, *, bind_self_name: bool, origin: str = "", chain: tuple[Path, ...] = ()
) -> DictConfig:
    """``path`` with its ``defaults:`` merged in and strings bound; nothing resolved.
    ``origin`` says who asked for the file, ``chain`` which files are being composed above it."""
    real = path.resolve()
    if real in chain:
        cycle = " -> ".join(str(p) for p in (*chain[chain.index(real) :], real))
        raise ConfigError(f"defaults lists include each other in a cycle: {cycle}; break it")
    chain = (*chain, real)
    cfg = _read_config(path, origin)
    defaults = cfg.pop("defaults", None)
    _bind_strings(cfg, path.parent, path.stem if bind_self_name else None)
    if defaults is None:
        return cfg
    if not isinstance(defaults, ListConfig):
        raise ConfigError(f"{path}: defaults must be a list, got {defaults!r}")

    def include(entry: str, listed: str) -> DictConfig:
        origin = f"it is listed as {listed!r} in the defaults of {path}"
        target = _build_config_path(path.parent, entry, path)
        return _compose(target, bind_self_name=bind_self_name, origin=origin, chain=chain)

    parts: list[DictConfig] = []
    for entry in defaults:
        if entry == "_self_":
            parts.append(cfg)
        elif isinstance(entry, str):
            parts.append(include(entry, entry))
        elif isinstance(entry, DictConfig):
            for group, option in entry.items():
                if option is None:  # `group: null` switches the group off
                    continue
                if isinstance(option, ListConfig | DictConfig):
                    raise ConfigError(
                        f"{path}: defaults entry '{group}: {option}' must name one file of the "
                        f"group {group!r}; a list of options is not supported"
                    )
                # `group: a/b` names a file relative to this one; `group: name` one in group/.
                option = str(option)
                rel = option if "/" in option else f"{group}/{option}"
                loaded = include(rel, f"{group}: {option}")
                for key in reversed(str(group).split("/")):
                    loaded = OmegaConf.create({key: loaded})
                parts.append(loaded)
        else:
            raise ConfigError(f"{path}: defaults entry {entry!r} is no name, group: name, _self_")
    if not any(part is cfg for part in parts):
        parts.append(cfg)
    return OmegaConf.merge(*parts)


#: The most nodes a YAML file may stand for once its aliases are expanded: a real config has
#: thousands; nested aliases ("billion laughs") reach billions from a few hundred bytes.
MAX_YAML_NODES = 1_000_000


def load_yaml(path: str | os.PathLike) -> DictConfig | ListConfig:
    """``OmegaConf.load(path)``, refused first (:class:`ConfigError`) when its aliases expand
    beyond :data:`MAX_YAML_NODES` nodes or refer to themselves.

    Example:
        >>> import pathlib, tempfile
        >>> bomb = pathlib.Path(tempfile.mkdtemp()) / "bomb.yaml"
        >>> rows = ["a: &a [x, x, x, x, x, x, x, x, x, x]"]
        >>> for p, c in zip("abcdefg", "bcdefgh"):
        ...     rows.append(f"{c}: &{c} [" + ", ".join([f"*{p}"] * 10) + "]")
        >>> _ = bomb.write_text("\\n".join(rows))
        >>> load_yaml(bomb)  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        espnet3.errors.ConfigError: config ... stands for more than 1000000 values once ...
    """
    text = Path(path).read_text(encoding="utf-8")
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError:
        root = None  # OmegaConf's own loader says what is wrong, with the position
    if root is not None:
        _check_expansion(root, path)
    return OmegaConf.load(path)


def _check_expansion(root: yaml.Node, path: str | os.PathLike) -> None:
    """Count the nodes ``root`` stands for, each alias counted as often as it is used."""
    sizes: dict[int, int] = {}
    on_path: set[int] = set()
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, children_done = stack.pop()
        if id(node) in sizes:
            continue
        children = _children(node)
        if not children_done:
            if id(node) in on_path:
                raise ConfigError(f"config {path}: a YAML alias refers to itself; remove it")
            on_path.add(id(node))
            stack.append((node, True))
            stack.extend((child, False) for child in children if id(child) not in sizes)
            continue
        on_path.discard(id(node))
        sizes[id(node)] = 1 + sum(sizes[id(child)] for child in children)
        if sizes[id(node)] > MAX_YAML_NODES:
            raise ConfigError(
                f"config {path} stands for more than {MAX_YAML_NODES} values once its YAML "
                "aliases are expanded (&anchor / *alias): write the values out, or split the file"
            )


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    return []


def _read_config(path: Path, origin: str) -> DictConfig:
    because = f"; {origin}" if origin else ""
    if not path.is_file():
        raise MissingFileError(
            errno.ENOENT, f"config file not found{because}; check the path", str(path)
        )
    try:
        cfg = load_yaml(path)
    except yaml.MarkedYAMLError as err:
        # Keep yaml's own error type; say which config it is and who included it.
        note = "\n".join(filter(None, (err.note, f"in config {path}{because}")))
        raise type(err)(
            err.context, err.context_mark, err.problem, err.problem_mark, note
        ) from None
    if not isinstance(cfg, DictConfig):
        kind = type(cfg).__name__
        raise ConfigError(f"config {path}{because} holds a {kind}: it must be a mapping")
    return cfg


def _build_config_path(base_path: Path, entry: str, listed_in: Path | None = None) -> Path:
    """The file a ``defaults:`` entry names: ``entry`` relative to ``base_path``, ``.yaml`` added."""
    suffix = PurePath(entry).suffix
    if suffix and suffix not in (".yaml", ".yml"):
        where = f" in the defaults of {listed_in}" if listed_in else ""
        raise ConfigError(
            f"defaults entry {entry!r}{where} names a {suffix!r} file: config files end in "
            ".yaml (or leave the suffix out)"
        )
    return Path(base_path) / (entry if suffix else f"{entry}.yaml")


def _bind_strings(cfg: DictConfig, base_path: Path, config_name: str | None) -> None:
    """Write into ``cfg``'s strings what resolvers cannot know: the file's directory and,
    given ``config_name``, its name and recipe."""
    recipe = _resolve_egs3_path(base_path) if config_name is not None else None

    def bind(text: str) -> str:
        if config_name is not None:
            text = text.replace(_SELF_NAME, config_name)
            if recipe is not None:
                text = text.replace(_CORPUS_AND_SYSTEM, f"${{set_corpus_and_system:{recipe}}}")
        return _rewrite_relative_resolver_paths(text, base_path)

    for container in _containers(cfg):
        for key in _keys(container):
            raw = container._get_node(key)._value()
            if isinstance(raw, str) and (bound := bind(raw)) != raw:
                container[key] = bound


def _rewrite_relative_resolver_paths(value: str, base_path: Path) -> str:
    """``value`` with relative ``${load_line:}``/``${config_path:}`` paths made absolute
    against ``base_path``; absolute paths and paths built from interpolations stay."""

    def absolute(match: re.Match) -> str:
        raw = match["path"].strip()
        # A quoted path (it may hold spaces) keeps its quotes so the expression still parses.
        quote = raw[0] if len(raw) >= 2 and raw[0] == raw[-1] and raw[0] in "'\"" else ""
        inner = raw[1:-1].strip() if quote else raw
        if not inner or "${" in inner or Path(inner).is_absolute():
            return match[0]
        resolved = (Path(base_path) / inner).resolve().as_posix()
        return f"${{{match['resolver']}:{quote}{resolved}{quote}"

    return _PATH_RESOLVER.sub(absolute, value)


def _resolve_egs3_path(path: str | os.PathLike, as_package: bool = False) -> str | None:
    """``<corpus>_<system>`` (or ``egs3.TEMPLATE.<system>``) of ``egs3/<corpus>/<system>/conf``
    or a file in it, else ``None``. The path as given wins over its symlink-free form."""
    path = Path(path)
    for candidate in dict.fromkeys((path.absolute(), path.resolve())):
        parts = candidate.parts
        for top in reversed([i for i, part in enumerate(parts) if part == "egs3"]):
            conf = next((i for i in range(top + 1, len(parts)) if parts[i] == "conf"), None)
            if conf is not None and conf - top >= 3:
                corpus, system = parts[top + 1], parts[conf - 1]
                return f"egs3.TEMPLATE.{system}" if as_package else f"{corpus}_{system}"
    return None


def _ensure_target_convert_all(cfg: DictConfig | ListConfig) -> None:
    """Give every mapping in ``cfg`` that has a ``_target_`` the key ``_convert_: all``."""
    for container in _containers(cfg):
        if isinstance(container, DictConfig) and "_target_" in container.keys():
            container["_convert_"] = "all"


def _finish(cfg: DictConfig, resolve: bool, where: str) -> DictConfig:
    if resolve:
        try:
            OmegaConf.resolve(cfg)
        except OmegaConfBaseException as err:
            raise type(err)(f"{err}\n    {_failing_key(cfg)}in {where}") from err
    _ensure_target_convert_all(cfg)
    return cfg


def _failing_key(cfg: DictConfig) -> str:
    try:  # OmegaConf.resolve() does not say which key failed; to_container() does
        OmegaConf.to_container(cfg, resolve=True)
    except OmegaConfBaseException as err:
        return f"at key {err.full_key} " if getattr(err, "full_key", None) else ""
    return ""


def _containers(node: DictConfig | ListConfig) -> Iterator[DictConfig | ListConfig]:
    """``node`` and every mapping or list inside it, without resolving any value."""
    yield node
    for key in _keys(node):
        child = node._get_node(key)
        if isinstance(child, DictConfig | ListConfig) and not (
            child._is_none() or child._is_missing() or child._is_interpolation()
        ):
            yield from _containers(child)


def _keys(node: DictConfig | ListConfig) -> list:
    return list(node.keys()) if isinstance(node, DictConfig) else list(range(len(node)))
