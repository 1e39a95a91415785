"""config_files: defaults lists, file-aware resolvers and packaged defaults, on real files.

Default packages are real packages written to tmp_path and imported from there.
"""

from __future__ import annotations

import importlib
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml
from omegaconf import OmegaConf
from omegaconf.errors import InterpolationResolutionError

from espnet3.errors import ConfigError, ModuleMissingError
from espnet3.parallel import ParallelConfig
from espnet3.utils import config_files
from espnet3.utils.config_files import (
    load_and_merge_config,
    load_config_with_defaults,
    load_default_config,
    load_line,
)


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")
    return path


def plain(cfg) -> dict:
    return OmegaConf.to_container(cfg, resolve=False)


# --- defaults lists ---------------------------------------------------------------------


def test_self_position_decides_who_wins(tmp_path):
    write(tmp_path / "base.yaml", "lr: 0.1\nbase_only: 1\n")
    late = write(tmp_path / "late.yaml", "defaults: [base]\nlr: 0.5\n")
    early = write(tmp_path / "early.yaml", "defaults: [_self_, base]\nlr: 0.5\n")
    assert plain(load_config_with_defaults(late)) == {"lr": 0.5, "base_only": 1}
    assert plain(load_config_with_defaults(early)) == {"lr": 0.1, "base_only": 1}


def test_group_entries_are_placed_under_their_group(tmp_path):
    write(tmp_path / "optim" / "adam.yaml", "lr: 0.001\n")
    write(tmp_path / "model" / "encoder" / "conformer.yml", "layers: 12\n")
    main = write(
        tmp_path / "main.yaml",
        """
        defaults:
          - optim: adam
          - model/encoder: conformer.yml
          - scheduler: null
        optim:
          weight_decay: 0.01
        """,
    )
    assert plain(load_config_with_defaults(main)) == {
        "optim": {"lr": 0.001, "weight_decay": 0.01},
        "model": {"encoder": {"layers": 12}},
    }


def test_nested_defaults_in_other_directories_keep_their_own_relative_paths(tmp_path):
    shared = tmp_path / "shared"
    write(shared / "tokens.txt", "<blank>\na\n\nb\n")
    write(shared / "common.yaml", "token_list: ${load_line:tokens.txt}\nname: ${self_name:}\n")
    write(tmp_path / "recipe" / "conf" / "base.yaml", "defaults: [../../shared/common]\n")
    main = write(tmp_path / "recipe" / "conf" / "train.yaml", "defaults: [base]\nname2: x\n")
    cfg = load_config_with_defaults(main)
    assert list(cfg.token_list) == ["<blank>", "a", "", "b"]  # blank lines are kept
    assert cfg.name == "common"  # each file's ${self_name:} is its own stem
    raw = plain(load_config_with_defaults(main, resolve=False))
    assert raw["token_list"] == f"${{load_line:{(shared / 'tokens.txt').resolve().as_posix()}}}"


def test_interpolations_resolve_after_composition(tmp_path):
    # The included file refers to a key only the including file defines.
    write(tmp_path / "trainer.yaml", "devices: ${num_device}\nlog: ${exp_dir}/log\n")
    main = write(tmp_path / "main.yaml", "defaults: [trainer]\nnum_device: 4\nexp_dir: e\n")
    assert plain(load_config_with_defaults(main)) == {
        "devices": 4,
        "log": "e/log",
        "num_device": 4,
        "exp_dir": "e",
    }
    assert plain(load_config_with_defaults(main, resolve=False))["devices"] == "${num_device}"


def test_targets_get_convert_all_and_other_mappings_do_not(tmp_path):
    main = write(
        tmp_path / "main.yaml",
        """
        model: {_target_: torch.nn.Linear, in_features: 2}
        steps: [{_target_: a.B}, {plain: 1}]
        disabled: null
        """,
    )
    cfg = plain(load_config_with_defaults(main))
    assert cfg["model"]["_convert_"] == "all"
    assert cfg["steps"] == [{"_target_": "a.B", "_convert_": "all"}, {"plain": 1}]
    assert cfg["disabled"] is None


def test_quoted_path_with_spaces(tmp_path):
    write(tmp_path / "my tokens.txt", "x\ny\n")
    main = write(tmp_path / "main.yaml", "tokens: \"${load_line:'my tokens.txt'}\"\n")
    assert list(load_config_with_defaults(main).tokens) == ["x", "y"]


# --- errors -----------------------------------------------------------------------------


def test_missing_include_names_the_file_and_who_listed_it(tmp_path):
    main = write(tmp_path / "main.yaml", "defaults: [base]\n")
    with pytest.raises(FileNotFoundError) as info:
        load_config_with_defaults(main)
    assert info.value.filename == str(tmp_path / "base.yaml")
    assert "listed as 'base' in the defaults of" in str(info.value)
    assert str(main) in str(info.value)


def test_invalid_yaml_keeps_yaml_error_type_and_names_both_files(tmp_path):
    write(tmp_path / "bad.yaml", "a: [1, 2\n")
    main = write(tmp_path / "main.yaml", "defaults: [bad]\n")
    with pytest.raises(yaml.parser.ParserError) as info:
        load_config_with_defaults(main)
    assert f"in config {tmp_path / 'bad.yaml'}" in str(info.value)
    assert f"defaults of {main}" in str(info.value)


def test_defaults_cycle_is_refused(tmp_path):
    write(tmp_path / "a.yaml", "defaults: [b]\n")
    write(tmp_path / "b.yaml", "defaults: [a]\n")
    with pytest.raises(ConfigError, match=r"cycle: .*a\.yaml -> .*b\.yaml -> .*a\.yaml"):
        load_config_with_defaults(tmp_path / "a.yaml")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("- a\n- b\n", "holds a ListConfig: it must be a mapping"),
        ("defaults: base\n", "defaults must be a list"),
        ("defaults: [base.txt]\n", "names a '.txt' file"),
        ("defaults: [{optim: [adam, sgd]}]\n", "a list of options is not supported"),
    ],
)
def test_malformed_configs_raise_config_error(tmp_path, text, message):
    main = write(tmp_path / "main.yaml", text)
    with pytest.raises(ConfigError, match=message) as info:
        load_config_with_defaults(main)
    assert str(main) in str(info.value)


def test_missing_token_list_names_path_key_and_config(tmp_path):
    main = write(tmp_path / "conf" / "main.yaml", "model:\n  vocab: ${load_line:tokens.txt}\n")
    with pytest.raises(InterpolationResolutionError) as info:
        load_config_with_defaults(main)
    message = str(info.value)
    assert str((tmp_path / "conf" / "tokens.txt").resolve()) in message
    assert "at key model.vocab" in message and str(main) in message


def test_load_line_missing_file_is_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError, match="relative to the config file") as info:
        load_line(tmp_path / "nope.txt")
    assert info.value.filename == str(tmp_path / "nope.txt")


def test_corpus_and_system_outside_egs3_fails_when_resolved(tmp_path):
    main = write(tmp_path / "conf" / "demo.yaml", "title: ${set_corpus_and_system:} demo\n")
    assert plain(load_config_with_defaults(main, resolve=False))["title"] == (
        "${set_corpus_and_system:} demo"
    )
    with pytest.raises(InterpolationResolutionError, match="egs3/<corpus>/<system>/conf"):
        load_config_with_defaults(main)


def test_corpus_and_system_inside_egs3(tmp_path):
    main = write(
        tmp_path / "egs3" / "an4" / "asr" / "conf" / "demo.yaml",
        "title: ${set_corpus_and_system:} demo\n",
    )
    assert load_config_with_defaults(main).title == "an4_asr demo"


# --- packaged defaults and merging ------------------------------------------------------


@pytest.fixture
def recipe_package(tmp_path, monkeypatch):
    """A package ``recipe_<test>`` under tmp_path/pkgs with conf/training.yaml."""
    root = tmp_path / "pkgs"
    name = "recipe_" + re.sub(r"\W", "_", tmp_path.name)
    write(root / name / "__init__.py", "")
    write(root / name / "src" / "readme.md", "# template\n")
    write(
        root / name / "conf" / "training.yaml",
        """
        recipe_dir: .
        exp_tag: ${self_name:}
        exp_dir: ${recipe_dir}/exp/${exp_tag}
        readme: ${config_path:../src/readme.md}
        optimizer: {_target_: torch.optim.Adam, lr: 0.001}
        """,
    )
    monkeypatch.syspath_prepend(str(root))
    yield name, root / name
    for module in [m for m in sys.modules if m == name or m.startswith(f"{name}.")]:
        del sys.modules[module]


def test_load_default_config_binds_its_own_name_and_stays_unresolved(recipe_package):
    name, package_dir = recipe_package
    cfg = plain(load_default_config("training.yaml", name))
    assert cfg["exp_tag"] == "training"
    assert cfg["exp_dir"] == "${recipe_dir}/exp/${exp_tag}"
    assert cfg["readme"] == f"${{config_path:{(package_dir / 'src' / 'readme.md').resolve()}}}"


def test_merge_binds_inherited_names_to_the_user_config(recipe_package, tmp_path):
    name, package_dir = recipe_package
    user = write(
        tmp_path / "mine" / "train_big.yaml",
        "recipe_dir: /data/r\noptimizer: {lr: 0.1}\nlog_dir: ${exp_dir}/logs\n",
    )
    cfg = load_and_merge_config(user, "training.yaml", default_package=name)
    assert cfg.exp_tag == "train_big"
    assert cfg.log_dir == "/data/r/exp/train_big/logs"
    assert cfg.readme == (package_dir / "src" / "readme.md").resolve().as_posix()
    assert plain(cfg)["optimizer"] == {
        "_target_": "torch.optim.Adam",
        "lr": 0.1,
        "_convert_": "all",
    }


def test_merge_infers_the_template_package_from_an_egs3_path(tmp_path, monkeypatch):
    write(tmp_path / "egs3" / "__init__.py", "")
    write(tmp_path / "egs3" / "TEMPLATE" / "__init__.py", "")
    write(tmp_path / "egs3" / "TEMPLATE" / "asr" / "__init__.py", "")
    write(
        tmp_path / "egs3" / "TEMPLATE" / "asr" / "conf" / "publication.yaml",
        "exp_tag: ${self_name:}\nhf_repo: espnet/${set_corpus_and_system:}_${exp_tag}\n",
    )
    user = write(tmp_path / "egs3" / "an4" / "asr" / "conf" / "publication.yaml", "{}\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    for module in [m for m in sys.modules if m == "egs3" or m.startswith("egs3.")]:
        monkeypatch.delitem(sys.modules, module)
    try:
        cfg = load_and_merge_config(user, "publication.yaml")
    finally:
        for module in [m for m in sys.modules if m == "egs3" or m.startswith("egs3.")]:
            del sys.modules[module]
    assert cfg.hf_repo == "espnet/an4_asr_publication"


def test_merge_errors(tmp_path, recipe_package):
    user = write(tmp_path / "user.yaml", "{}\n")
    assert load_and_merge_config(None, "training.yaml") is None
    with pytest.raises(ConfigError, match="default_package is required") as info:
        load_and_merge_config(user, "training.yaml")
    assert str(user) in str(info.value)
    with pytest.raises(ModuleMissingError, match="'no_such_recipe_pkg' cannot be imported"):
        load_and_merge_config(user, "training.yaml", default_package="no_such_recipe_pkg")
    with pytest.raises(FileNotFoundError, match="default conf/metrics.yaml of package") as info:
        load_and_merge_config(user, "metrics.yaml", default_package=recipe_package[0])
    assert info.value.filename.endswith("conf/metrics.yaml")


# --- the upstream module name -----------------------------------------------------------


def test_config_utils_names_this_module_and_survives_reloading(tmp_path):
    import espnet3.utils.config_utils as config_utils

    assert config_utils.load_config_with_defaults is config_files.load_config_with_defaults
    assert config_utils.OMEGACONF_ESPNET3_RESOLVER is config_files.OMEGACONF_ESPNET3_RESOLVER
    assert {"_load_default_config", "load_and_merge_config"} <= set(dir(config_utils))
    star: dict = {}
    exec("from espnet3.utils.config_utils import *", star)
    assert star["load_and_merge_config"] is config_files.load_and_merge_config
    importlib.reload(config_utils)
    importlib.reload(config_files)
    assert config_utils.__name__ == "espnet3.utils.config_utils"
    assert sys.modules["espnet3.utils.config_utils"] is config_utils
    write(tmp_path / "tokens.txt", "a\n")
    main = write(tmp_path / "main.yaml", "t: ${load_line:tokens.txt}\nn: ${self_name:}\n")
    assert plain(config_utils.load_config_with_defaults(main)) == {"t": ["a"], "n": "main"}
    with pytest.raises(AttributeError, match="no_such_name"):
        config_utils.no_such_name  # noqa: B018


def test_patching_under_the_upstream_name_changes_what_the_loader_calls(tmp_path, monkeypatch):
    """Upstream's tests replace the packaged defaults this way, then call the loader."""
    from espnet3.utils.config_utils import load_and_merge_config as upstream_merge

    original = config_files._load_default_config
    calls = []

    def defaults(config_name, default_package, bind_self_name=True):
        calls.append((config_name, default_package))
        return OmegaConf.create({"lr": 0.1, "name": "default"})

    monkeypatch.setattr("espnet3.utils.config_utils._load_default_config", defaults)
    assert config_files._load_default_config is defaults
    user = write(tmp_path / "user.yaml", "name: user\n")
    merged = upstream_merge(user, "training.yaml", default_package="any_recipe")
    assert plain(merged) == {"lr": 0.1, "name": "user"}
    assert calls == [("training.yaml", "any_recipe")]
    monkeypatch.undo()
    assert config_files._load_default_config is original


def _laughs(levels: int = 9) -> str:
    """A few hundred bytes of nested YAML aliases that stand for 10**levels values."""
    rows = ['lol0: &lol0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for k in range(1, levels):
        rows.append(f"lol{k}: &lol{k} [" + ", ".join([f"*lol{k - 1}"] * 10) + "]")
    return "\n".join(rows) + "\n"


@pytest.mark.parametrize("loader", ["load_config_with_defaults", "parallel", "cli"])
def test_a_billion_laughs_config_is_refused_before_it_is_expanded(tmp_path, loader):
    bomb = tmp_path / "bomb.yaml"
    bomb.write_text(_laughs())
    assert len(bomb.read_bytes()) < 1000
    if loader == "cli":
        (tmp_path / "conf").mkdir()
        (tmp_path / "conf" / "dataset.yaml").write_text(_laughs())
        done = subprocess.run(
            [sys.executable, "-m", "espnet3", "create-dataset", str(tmp_path)],
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert done.returncode != 0 and "Traceback" not in done.stderr
        assert "once its YAML aliases are expanded" in done.stderr
        return
    with pytest.raises(ConfigError, match="more than 1000000 values once its YAML aliases"):
        if loader == "parallel":
            ParallelConfig.from_any(str(bomb))
        else:
            load_config_with_defaults(bomb)


def test_a_yaml_alias_that_contains_itself_is_refused(tmp_path):
    loop = tmp_path / "loop.yaml"
    loop.write_text("a: &a\n  b: *a\n")
    with pytest.raises(ConfigError, match="alias refers to itself"):
        load_config_with_defaults(loop)


def test_aliases_of_a_real_config_still_load(tmp_path):
    ok = tmp_path / "ok.yaml"
    ok.write_text("base: &base {lr: 0.1, warmup: 10}\nadam: {<<: *base, lr: 0.2}\n")
    assert dict(load_config_with_defaults(ok).adam) == {"lr": 0.2, "warmup": 10}
