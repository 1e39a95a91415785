"""Guide: data preparation with providers and runners (local, Dask, async shards, cleaning)."""

from __future__ import annotations

import numpy as np
import pytest
from guide_recipe import (
    PrepProvider,
    PrepRunner,
    ShortClipCleaner,
    build_feature_pipeline,
    load_raw_samples,
)
from omegaconf import OmegaConf

from espnet3.parallel import set_parallel

GUIDE_SLURM = """
parallel:
  env: slurm
  n_workers: 8
  options:
    queue: gpu
    cores: 8
    processes: 1
    memory: 32GB
    walltime: 04:00:00
    job_extra_directives:
      - "--gres=gpu:1"
"""


@pytest.fixture
def prep_yaml(an4_manifest, tmp_path, monkeypatch):
    """``prep.yaml``: the dataset and model sections the guide's provider reads."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "prep.yaml").write_text(
        f"dataset:\n  manifest: {an4_manifest}\nmodel:\n  num_mel_bins: 80\n"
        "parallel:\n  env: local\n  n_workers: 2\n"
    )
    yield tmp_path / "prep.yaml"
    set_parallel(None)


def expected(manifest):
    """What the runner must return: the pipeline applied directly to every sample."""
    rows = load_raw_samples(OmegaConf.create({"manifest": str(manifest)}))
    pipeline = build_feature_pipeline(OmegaConf.create({"num_mel_bins": 80}))
    return [
        {"utt_id": r["utt_id"], "features": pipeline.extract(r["audio"], r["sr"]).shape}
        for r in rows
    ]


def test_running_locally(prep_yaml, an4_manifest, tmp_path):
    cfg = OmegaConf.load("prep.yaml")
    provider = PrepProvider(cfg, params={"output_dir": "exp/data"})
    runner = PrepRunner(provider)

    indices = list(range(len(provider.build_env_local()["dataset"])))
    results = runner(indices)  # returns a list of metadata dictionaries

    assert results == expected(an4_manifest)
    first = np.load(tmp_path / "exp" / "data" / f"{results[0]['utt_id']}.npy")
    assert first.shape == results[0]["features"] and first.dtype == np.float32


def test_scaling_out_with_dask_synchronous_mode(prep_yaml, an4_manifest):
    """``set_parallel(cfg.parallel)`` then the same call; here on a local cluster."""
    from espnet3.parallel import set_parallel

    cfg = OmegaConf.load("prep.yaml")
    provider = PrepProvider(cfg, params={"output_dir": "exp/data"})
    runner = PrepRunner(provider)
    total_items = len(provider.build_env_local()["dataset"])

    set_parallel(cfg.parallel)
    results = runner(range(total_items))  # transparently runs on the cluster
    assert results == expected(an4_manifest)


def test_the_guides_slurm_section_is_a_valid_parallel_config():
    from espnet3.parallel import get_parallel_config

    cfg = OmegaConf.create(GUIDE_SLURM)
    set_parallel(cfg.parallel)
    try:
        parallel = get_parallel_config()
        assert parallel.env == "slurm" and parallel.options["walltime"] == "04:00:00"
        assert parallel.options["job_extra_directives"] == ["--gres=gpu:1"]
    finally:
        set_parallel(None)


def test_asynchronous_shards_for_large_jobs(prep_yaml, an4_manifest):
    cfg = OmegaConf.load("prep.yaml")
    set_parallel(cfg.parallel)  # env: local runs the shards as processes on this machine
    provider = PrepProvider(cfg, params={"output_dir": "exp/data"})
    total_items = len(provider.build_env_local()["dataset"])

    async_runner = PrepRunner(
        provider,
        async_mode=True,
        async_specs_dir="./specs",
        async_result_dir="./results",
    )
    job_meta = async_runner(range(total_items))

    job_meta.wait(timeout=300, poll=0.2)
    results = [result for _, result in job_meta.collect()]
    assert results == [{**r, "features": list(r["features"])} for r in expected(an4_manifest)]


def test_data_cleaning_within_the_same_pipeline(prep_yaml, an4_manifest, parallel_config):
    """Returning ``None`` drops a sample, on either backend."""
    cfg = OmegaConf.load("prep.yaml")
    cleaner = ShortClipCleaner(min_seconds=2.0)
    provider = PrepProvider(cfg, params={"output_dir": "exp/data", "cleaner": cleaner})
    results = PrepRunner(provider)(range(len(provider.build_env_local()["dataset"])))
    rows = load_raw_samples(cfg.dataset)
    kept = [r["utt_id"] for r in rows if len(r["audio"]) / r["sr"] >= 2.0]
    assert 0 < len(kept) < len(rows)
    assert [r["utt_id"] for r in results] == kept


@pytest.mark.slurm
def test_scaling_out_on_a_real_slurm(prep_yaml, an4_manifest, tmp_path):
    """The guide's SLURM section, with this machine's resources (no gpu queue here)."""
    (tmp_path / "slurm.yaml").write_text(
        "parallel:\n  env: slurm\n  n_workers: 2\n  startup_timeout: 240\n"
        f"  log_dir: {tmp_path / 'jobs'}\n"
        "  options:\n    cores: 1\n    processes: 1\n    memory: 1GB\n    walltime: 10:00\n"
        "    interface: lo\n    job_extra_directives: []\n"
    )
    cfg = OmegaConf.merge(OmegaConf.load("prep.yaml"), OmegaConf.load("slurm.yaml"))
    provider = PrepProvider(cfg, params={"output_dir": str(tmp_path / "exp" / "data")})
    runner = PrepRunner(provider)

    set_parallel(cfg.parallel)
    results = runner(range(len(provider.build_env_local()["dataset"])))
    assert results == expected(an4_manifest)
