"""What upstream recipe scripts (run.py) call: stages, their logs, one experiment identity."""

from __future__ import annotations

import argparse
import logging
import subprocess
import sys
import textwrap

import pytest
from omegaconf import OmegaConf

from espnet3.systems.base.system import BaseSystem
from espnet3.utils.logging_utils import configure_logging
from espnet3.utils.run_utils import (
    apply_training_experiment_context,
    resolve_loaded_configs,
    validate_experiment_context,
)
from espnet3.utils.stages_utils import resolve_stages, run_stages


class TwoStages(BaseSystem):
    def __init__(self, exp_dir):
        super().__init__({"exp_dir": str(exp_dir), "data_dir": str(exp_dir / "data")})
        self.ran = []

    def create_dataset(self):
        logging.getLogger("espnet3.recipe").info("building the manifests")
        self.ran.append("create_dataset")

    def collect_stats(self):
        logging.getLogger("espnet3.recipe").info("counting frames")
        self.ran.append("collect_stats")


@pytest.fixture
def root_logging():
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for handler in root.handlers:
        if handler not in handlers:
            handler.close()
    root.handlers, root.level = handlers, level


def test_each_stage_logs_to_its_own_file_in_the_recipe_order(tmp_path, root_logging):
    system = TwoStages(tmp_path / "exp")
    stages = resolve_stages(
        ["collect_stats", "create_dataset"], ["create_dataset", "collect_stats", "train"]
    )
    log = configure_logging()
    run_stages(system, stages, args=argparse.Namespace(training_config=None), log=log)
    assert system.ran == ["create_dataset", "collect_stats"]
    building = (tmp_path / "exp" / "data" / "create_dataset.log").read_text()
    counting = (tmp_path / "exp" / "collect_stats.log").read_text()
    assert "[create_dataset] building the manifests" in building and "counting" not in building
    assert (
        "[collect_stats] counting frames" in counting
        and "=== [DONE] stage: collect_stats" in counting
    )
    assert "Command: " in counting and "Cluster env:" in counting  # the run's header
    run_stages(system, ["create_dataset"], log=log)  # a second run keeps the first log
    assert (tmp_path / "exp" / "data" / "create_dataset1.log").read_text() == building


def test_a_stage_outside_data_preparation_ends_the_script_with_one_line(tmp_path):
    script = tmp_path / "run.py"
    body = f"""
        from espnet3.systems.base.system import BaseSystem
        from espnet3.utils.logging_utils import configure_logging
        from espnet3.utils.stages_utils import run_stages
        system = BaseSystem({{"exp_dir": "{tmp_path / "exp"}"}})
        run_stages(system, ["train"], log=configure_logging())
    """
    script.write_text(textwrap.dedent(body))
    done = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, cwd=tmp_path
    )
    assert done.returncode == 1 and "Traceback" not in done.stderr
    said = [line for line in done.stderr.splitlines() if "not part of this distribution" in line]
    assert len(said) == 1
    assert "[train] Stage 'train' failed: the train stage is not part" in said[0]


def test_the_training_identity_reaches_the_other_configs(caplog):
    training = OmegaConf.create({"exp_tag": "asr1", "exp_dir": "exp/asr1"})
    inference = OmegaConf.create({"exp_tag": "old", "inference_dir": "${exp_dir}/decode"})
    metrics = OmegaConf.create({"exp_tag": None})
    demo = OmegaConf.create({})
    publication = OmegaConf.create({"pack_model": {"out_dir": "packed"}})
    with caplog.at_level(logging.INFO):
        apply_training_experiment_context(
            training_config=training,
            inference_config=inference,
            metrics_config=metrics,
            publication_config=publication,
            demo_config=demo,
            log=logging.getLogger("test"),
        )
    resolve_loaded_configs(training, inference, metrics, None, demo)
    assert (
        inference.inference_dir == "exp/asr1/decode" and metrics.inference_dir == "exp/asr1/decode"
    )
    assert demo.model.dir_or_tag == "packed" and demo.exp_dir == "exp/asr1"
    assert (
        "Overriding inference_config.exp_tag with training_config value: 'old' -> 'asr1'"
        in caplog.text
    )
    with pytest.raises(ValueError, match="infer stage requires --training_config"):
        validate_experiment_context(
            training_config=None,
            inference_config=OmegaConf.create({"exp_dir": "${exp_tag}"}),
            metrics_config=None,
            stages_to_run=["infer"],
        )
