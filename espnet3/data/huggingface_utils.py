"""The guide's import path of the Hugging Face conversions.

Example:
    >>> from espnet3.data.huggingface_utils import convert_to_dataset, cutset_from_huggingface
"""

from espnet3.data.hf_to_lhotse import cutset_from_huggingface
from espnet3.data.row_items import convert_to_dataset

__all__ = ["convert_to_dataset", "cutset_from_huggingface"]
