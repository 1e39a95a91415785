"""Speech data: reading audio, Hugging Face datasets to Lhotse, and the ESPnet3 dataset.

Submodules are imported on use so that ``import espnet3.data`` stays cheap:
``espnet3.data.sphere.read_sphere``, ``espnet3.data.hf_to_lhotse.cutset_from_huggingface``
(also at the guide's ``espnet3.data.huggingface_utils``), ``espnet3.data.dataset.ESPnet3Dataset``,
``espnet3.data.sharing``.

A Hugging Face dataset becomes a ``CutSet`` without copying its audio: each cut's source names
its dataset row, and reads back lazily wherever ``espnet3.data.row_source.install()`` ran (the
converter and ``ESPnet3Dataset`` run it when a cut names a row; importing changes nothing).
Audio the dataset cannot hold for the cuts (an in-memory dataset, changed samples) is written
under a cache directory, named in a log line
(``ESPNET3_CACHE_DIR``, else under ``HF_DATASETS_CACHE``, ``HF_HOME``, ``XDG_CACHE_HOME`` or
``~/.cache``). Pass ``audio_dir`` to write the audio to files instead, when the cuts must
outlive the dataset; ``espnet3.data.sharing.save_lhotse`` saves cuts that Lhotse reads without
espnet3 (it copies audio kept in dataset rows next to the manifests)::

    from espnet3.data.huggingface_utils import cutset_from_huggingface
    from espnet3.parallel import get_client

    with get_client({"env": "local", "n_workers": 4}) as client:
        cuts = cutset_from_huggingface(
            {"audio": "audio", "text": "sentence"}, None, "data/cv_hi", "train", client)
    cuts.to_file("data/cuts_train.jsonl.gz")
"""
