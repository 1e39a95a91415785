"""Guide: data preparation and parallel processing (HF -> Lhotse with Dask, sharing).

Each test runs one of the guide's examples as the guide writes it; only its placeholders
(the dataset name, the config file) are filled in, with real AN4 speech.
"""

from __future__ import annotations

from pathlib import Path

import datasets
import numpy as np
import pytest
from hf_datasets import data_directory
from lhotse import CutSet, validate

SLURM_YAML = """
parallel:
  env: slurm
  n_workers: 8
  options:
    queue: gpu
    cores: 8
    processes: 1
    memory: 16GB
    walltime: 30:00
    job_extra_directives:
      - "--gres=gpu:1"
"""


@pytest.fixture
def hub_like(an4_utterances, tmp_path, monkeypatch):
    """``your_dataset_name``: a local data directory laid out as the hub serves one."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("ESPNET3_CACHE_DIR", str(tmp_path / "cache"))
    data_directory(an4_utterances, tmp_path / "your_dataset_name")
    (tmp_path / "your_parallel_config.yaml").write_text("parallel:\n  env: local\n  n_workers: 2\n")
    return an4_utterances


def test_converting_huggingface_datasets_to_a_lhotse_cutset(hub_like, tmp_path):
    from espnet3.data.huggingface_utils import cutset_from_huggingface
    from espnet3.parallel import get_client

    # 1. Load the HuggingFace dataset
    dataset_id = "your_dataset_name"
    split = "train"
    dataset = datasets.load_dataset(dataset_id, split=split)

    # 2. Define how to extract audio and text from each sample
    data_info = {"audio": lambda x: x["audio"]["array"], "text": lambda x: x["text"]}

    # 3. Launch Dask client with parallel config
    from omegaconf import OmegaConf

    config = OmegaConf.load("your_parallel_config.yaml")

    with get_client(config.parallel) as client:
        cuts = cutset_from_huggingface(
            data_info=data_info,
            dataset_length=len(dataset),
            dataset_id=dataset_id,
            split=split,
            client=client,
        )

    # 4. Optionally validate and save the CutSet
    validate(cuts)
    cuts.to_file("cuts_train.jsonl.gz")

    from espnet3.data import hf_open, row_source

    hf_open._OPENED.clear()  # read back as a new process would, with nothing opened yet
    row_source._COLUMNS.clear()
    back = CutSet.from_file(tmp_path / "cuts_train.jsonl.gz").to_eager()
    validate(back, read_data=True)
    assert len(back) == len(hub_like)
    # Shared as plain Lhotse reads it: the audio beside the manifest (tests/data/
    # test_share_plain_lhotse.py reads it in a process without espnet3); no other copy.
    (audio,) = tmp_path.glob("cuts_train.jsonl.gz.audio-*")
    assert {c.recording.sources[0].type for c in back} == {"file"}
    assert all(Path(c.recording.sources[0].source).is_relative_to(audio) for c in back)
    assert {c.recording.sources[0].type for c in cuts} == {"url"}  # in process: the rows
    assert not (tmp_path / "cache").exists()
    assert list(back.ids) == [f"train-{i:08d}" for i in range(len(hub_like))]
    for cut, utt in zip(back, hub_like, strict=True):
        assert cut.sampling_rate == utt["sampling_rate"] == 16000
        np.testing.assert_array_equal(np.rint(cut.load_audio()[0] * 32768), utt["samples"])
        assert cut.supervisions[0].text == utt["text"]


def test_example_parallel_config_slurm():
    """The SLURM section validates, and dask-jobqueue renders the job it describes."""
    from dask_jobqueue import SLURMCluster
    from omegaconf import OmegaConf

    from espnet3.parallel import ParallelConfig

    config = OmegaConf.create(SLURM_YAML)
    parallel = ParallelConfig.from_any(config.parallel)
    assert (parallel.env, parallel.n_workers) == ("slurm", 8)
    # YAML reads 30:00 as the number 1800: it is 30 minutes, not 1800 minutes.
    assert parallel.options["walltime"] == "00:30:00"
    with SLURMCluster(
        **parallel.options, interface="lo", scheduler_options={"interface": "lo"}
    ) as c:
        script = c.job_script()
    for directive in ("-p gpu", "--cpus-per-task=8", "--mem=15G", "-t 00:30:00", "--gres=gpu:1"):
        assert f"#SBATCH {directive}" in script


def test_example_python_usage_client_map(hub_like):
    """``client.map(convert_to_dataset, data_list)`` inside ``get_client``."""
    from omegaconf import OmegaConf

    from espnet3.data.huggingface_utils import convert_to_dataset
    from espnet3.parallel import get_client

    config = OmegaConf.load("your_parallel_config.yaml")
    data_list = list(
        datasets.load_dataset("your_dataset_name", split="train").cast_column(
            "audio", datasets.Audio(decode=False)
        )
    )

    # Launch 8 workers with 8 cores and 1 GPU each
    with get_client(config.parallel) as client:
        # Distribute map tasks over workers
        result = client.map(convert_to_dataset, data_list)
        items = client.gather(result)

    assert [item["text"] for item in items] == [u["text"] for u in hub_like]
    for item, utt in zip(items, hub_like, strict=True):
        assert item["sampling_rate"] == 16000 and item["speech"].dtype == np.float32
        np.testing.assert_array_equal(np.rint(item["speech"] * 32768), utt["samples"])


def test_data_sharing_espnet3_dataset(hub_like):
    from datasets import load_dataset

    from espnet3.data.dataset import ESPnet3Dataset

    hf_dataset = load_dataset("your_dataset_name")
    dataset = ESPnet3Dataset(hf_dataset)

    assert len(dataset) == len(hub_like)
    assert [dataset[i]["text"] for i in range(len(dataset))] == [u["text"] for u in hub_like]
    np.testing.assert_array_equal(np.rint(dataset[2]["speech"] * 32768), hub_like[2]["samples"])
