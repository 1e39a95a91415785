"""scp_utils: metric result keys and the inference files metrics read, on real directories."""

from __future__ import annotations

from collections import OrderedDict

import pytest
from omegaconf import OmegaConf

from espnet3.errors import ConfigError, ContractError
from espnet3.utils.scp_utils import get_class_path, load_scp_paths


def test_get_class_path_names_module_and_class():
    class Local:
        pass

    assert get_class_path(OrderedDict()) == "collections.OrderedDict"
    # A local class has no import path, but it still gets a key.
    assert get_class_path(Local()) == f"{__name__}.Local"


@pytest.fixture
def infer(tmp_path):
    test_dir = tmp_path / "infer" / "test-clean"
    test_dir.mkdir(parents=True)
    for name in ("text.scp", "hyp.scp", "score.txt"):
        (test_dir / name).write_text("utt1 A\n")
    return tmp_path / "infer"


@pytest.mark.parametrize(
    "inputs",
    [
        {"ref": "text", "hyp": "hyp"},
        OmegaConf.create({"ref": "text", "hyp": "hyp"}),
    ],
)
def test_mapping_inputs_give_alias_to_path(infer, inputs):
    assert load_scp_paths(infer, "test-clean", inputs) == {
        "ref": infer / "test-clean" / "text.scp",
        "hyp": infer / "test-clean" / "hyp.scp",
    }


@pytest.mark.parametrize("inputs", [["text", "hyp"], OmegaConf.create(["text", "hyp"])])
def test_list_inputs_are_their_own_aliases(infer, inputs):
    assert load_scp_paths(str(infer), "test-clean", inputs) == {
        "text": infer / "test-clean" / "text.scp",
        "hyp": infer / "test-clean" / "hyp.scp",
    }


def test_other_suffix(infer):
    assert load_scp_paths(infer, "test-clean", ["score"], file_suffix=".txt") == {
        "score": infer / "test-clean" / "score.txt"
    }


def test_missing_test_directory_says_to_run_inference(infer):
    with pytest.raises(ContractError) as info:
        load_scp_paths(infer, "test-other", ["text"])
    assert isinstance(info.value, AssertionError)
    assert str(infer / "test-other") in str(info.value)
    assert "run the inference stage" in str(info.value)


def test_missing_files_are_all_named_with_what_is_there(infer):
    with pytest.raises(ContractError) as info:
        load_scp_paths(infer, "test-clean", {"ref": "txt", "hyp": "hyp", "x": "alignment"})
    message = str(info.value)
    assert message.startswith(
        f"missing txt.scp (did you mean 'text.scp'?), alignment.scp in {infer / 'test-clean'}; "
        "it holds hyp.scp, text.scp"
    )


def test_a_string_is_not_a_list_of_inputs(infer):
    with pytest.raises(ConfigError, match=r"got 'text'; write \[text\]"):
        load_scp_paths(infer, "test-clean", "text")
