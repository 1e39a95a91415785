"""collect_stats: feature statistics of real audio, sequential and on the suite's backend."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from stats_toys import Frontend, WavDataset, log_power, write_wavs

from espnet3.components.data.collate import CommonCollateFn
from espnet3.components.data.collect_stats import collect_stats, collect_stats_batch

MODEL = {"_target_": "stats_toys.Frontend"}
COLLATE = {"collate_fn": {"_target_": "espnet3.components.data.collate.CommonCollateFn"}}


def dataset_config(manifest):
    entry = [{"dataset": {"_target_": "stats_toys.WavDataset", "manifest": str(manifest)}}]
    return {"train": entry, "valid": entry}


def test_statistics_shapes_and_features_match_a_direct_computation(tmp_path, parallel_config):
    manifest = write_wavs(tmp_path / "wav", 7)
    out = tmp_path / "stats"
    collect_stats(
        MODEL,
        dataset_config(manifest),
        COLLATE,
        "train",
        out,
        write_collected_feats=True,
        batch_size=3,
    )
    frames = [log_power(WavDataset(manifest)[i]["speech"]) for i in range(7)]
    every = np.concatenate(frames).astype(np.float64)
    stats = np.load(out / "train" / "feats_stats.npz")
    assert int(stats["count"]) == len(every) == sum(len(f) for f in frames)
    np.testing.assert_allclose(stats["sum"], every.sum(0), rtol=1e-5)
    np.testing.assert_allclose(stats["sum_square"], (every**2).sum(0), rtol=1e-5)
    assert (out / "train" / "stats_keys").read_text().split() == ["feats", "feats_lengths"]
    uids = WavDataset(manifest).uids()
    shape_lines = (out / "train" / "feats_shape").read_text().splitlines()
    assert shape_lines == [f"{u} {len(f)},{f.shape[1]}" for u, f in zip(uids, frames, strict=True)]
    scp = dict(
        line.split() for line in (out / "train/collect_feats/feats.scp").read_text().splitlines()
    )
    assert list(scp) == uids
    np.testing.assert_allclose(np.load(scp[uids[3]]), frames[3], rtol=1e-5)


def test_the_parallel_config_argument_runs_the_batches_on_that_cluster(tmp_path):
    manifest = write_wavs(tmp_path / "wav", 4)
    collect_stats(MODEL, dataset_config(manifest), COLLATE, "valid", tmp_path / "seq")
    collect_stats(
        MODEL,
        dataset_config(manifest),
        COLLATE,
        "valid",
        tmp_path / "par",
        parallel_config={"env": "local", "n_workers": 2},
        batch_size=1,
    )
    seq, par = (np.load(tmp_path / d / "valid" / "feats_stats.npz") for d in ("seq", "par"))
    assert int(seq["count"]) == int(par["count"])
    np.testing.assert_allclose(seq["sum"], par["sum"], rtol=1e-6)


def test_bad_models_collates_and_sections_are_explained(tmp_path):
    manifest = write_wavs(tmp_path / "wav", 2)
    with pytest.raises(AttributeError, match="missing required callable 'collect_feats'"):
        collect_stats(
            {"_target_": "builtins.dict"}, dataset_config(manifest), COLLATE, "train", tmp_path
        )
    with pytest.raises(ValueError, match="does not provide split 'test'"):
        collect_stats(MODEL, dataset_config(manifest), COLLATE, "test", tmp_path)
    with pytest.raises(RuntimeError, match="multiple_iterator is not supported"):
        collect_stats(
            MODEL,
            dataset_config(manifest),
            {"train": {"multiple_iterator": True}},
            "train",
            tmp_path,
        )
    with pytest.raises(ValueError, match="batch_size must be a positive integer"):
        collect_stats(MODEL, dataset_config(manifest), COLLATE, "train", tmp_path, batch_size=0)
    items = [{"speech": np.ones(64, np.float32)}] * 2
    with pytest.raises(RuntimeError, match=r"return \(uids, batch_dict\)"):
        collect_stats_batch([0, 1], Frontend(), items, lambda b: {"speech": 1})
    with pytest.raises(RuntimeError, match="return a mapping for batch tensors"):
        collect_stats_batch([0, 1], Frontend(), items, lambda b: (["a", "b"], [1]))
    with pytest.raises(ValueError, match="kwargs conflict with batch tensors: speech"):
        collect_stats_batch(
            [0, 1],
            Frontend(),
            items,
            CommonCollateFn(),
            torch.device("cpu"),
            collect_stats_kwargs={"speech": 1},
        )


def test_statistics_are_shards_a_rerun_resumes_and_new_settings_start_over(tmp_path):
    manifest = write_wavs(tmp_path / "wav", 5)
    out = tmp_path / "stats"

    def run(**kwargs):
        collect_stats(
            MODEL, dataset_config(manifest), COLLATE, "train", out, batch_size=2, **kwargs
        )
        return (out / "train" / "split.0" / "done").stat().st_ino

    first = run()
    manifest_json = (out / "train" / "manifest.json").read_text()
    assert '"items": [\n        [\n          0,\n          1' in manifest_json  # units are batches
    before = np.load(out / "train" / "feats_stats.npz")["sum"]
    assert run() == first  # resumed: the done shard was not run again
    np.testing.assert_array_equal(np.load(out / "train" / "feats_stats.npz")["sum"], before)
    assert run(train_mode=True) != first  # another setting: every shard ran again
    np.testing.assert_allclose(np.load(out / "train" / "feats_stats.npz")["sum"], before)
