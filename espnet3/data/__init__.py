"""Speech data: reading audio, Hugging Face datasets to Lhotse, and the ESPnet3 dataset.

Submodules are imported on use so that ``import espnet3.data`` stays cheap:
``espnet3.data.sphere.read_sphere``, ``espnet3.data.huggingface_utils.cutset_from_huggingface``,
``espnet3.data.dataset.ESPnet3Dataset``.
"""
